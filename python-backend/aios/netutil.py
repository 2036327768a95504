"""Aborting an HTTP response that another thread is reading."""

import socket


def shut_down(response) -> None:
    """Wake a read blocked on `response` (httpx or httpx2) by shutting its socket down:
    closing the response instead would wait for the reading thread's lock."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed
