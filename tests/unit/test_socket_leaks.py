"""The suite's report of sockets the garbage collector closes (tests/socket_leaks.py), which
tests/conftest.py installs for the whole session."""

import gc
import os
import socket

import pytest

from tests.socket_leaks import MINE, ROOT, THEIRS


def leak_in_a_cycle(namespace: dict) -> int:
    sock = namespace["sock"]
    cycle: list = [sock]
    cycle.append(cycle)  # only the collector can free it
    fd = sock.fileno()
    del namespace["sock"], sock, cycle
    return fd


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_a_socket_a_test_left_open_is_closed_and_reported_with_where_it_was_made(request):
    fd = leak_in_a_cycle({"sock": socket.socket()})
    with pytest.warns(ResourceWarning, match=THEIRS) as warned:
        gc.collect()
    message = str(warned[0].message)
    assert f"made while {request.node.nodeid} ran" in message
    assert "test_socket_leaks.py" in message and f"fd={fd}" in message
    assert not fd_is_open(fd)


def test_a_socket_the_projects_code_left_open_is_told_apart():
    namespace = {"socket": socket}
    exec(compile("sock = socket.socket()", str(ROOT / "python-backend" / "aios" / "leaky.py"),
                 "exec"), namespace)
    fd = leak_in_a_cycle(namespace)
    with pytest.warns(ResourceWarning, match=MINE):
        gc.collect()
    assert not fd_is_open(fd)


def test_a_closed_socket_says_nothing(recwarn):
    with socket.socket() as sock:
        cycle: list = [sock]
        cycle.append(cycle)
    del sock, cycle
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]
