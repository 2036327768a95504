import os

import pytest

pytestmark = pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")


def rfc6455_mask(data: bytes, mask: bytes, offset: int) -> bytes:
    """RFC 6455, 5.3: octet i of the payload is XORed with octet i mod 4 of the key."""
    return bytes(byte ^ mask[(offset + i) % 4] for i, byte in enumerate(data))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1024, 65537])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 6])
def test_unmask_matches_the_rfc_for_every_size_and_offset(size, offset):
    from aios.web.server_fixes import unmask
    data, mask = os.urandom(size), os.urandom(4)
    assert unmask(data, mask, offset=offset) == rfc6455_mask(data, mask, offset)
    assert unmask(data + b"tail", mask, length=size, offset=offset) == \
        rfc6455_mask(data, mask, offset)


def test_a_message_is_bounded_as_a_whole_not_only_per_frame():
    from eventlet.websocket import FailedConnectionError

    from aios.web.server_fixes import BoundedMessage
    message = BoundedMessage(opcode=1, max_frame_length=10)
    message.push(b"12345")
    message.push(b"67890")
    with pytest.raises(FailedConnectionError) as refused:
        message.push(b"1", final=True)
    assert refused.value.status == 1009
    assert message.getvalue() == b"1234567890"  # the refused piece was not kept


def test_mending_replaces_eventlets_per_byte_unmasking():
    from eventlet.websocket import RFC6455WebSocket

    from aios.web.server_fixes import BoundedMessage, mend_eventlet_websocket, unmask
    mend_eventlet_websocket()
    assert RFC6455WebSocket._apply_mask is unmask
    assert RFC6455WebSocket.Message is BoundedMessage
