"""Sockets the garbage collector closes, reported with where they were made.

An unclosed socket in a reference cycle is closed whenever the collector runs, so Python's
own ResourceWarning lands on whatever test runs then (under pytest's `error` filter: fails
it) and says nothing of where the socket came from. Here each socket remembers the test and
the stack that made it, and one collected unclosed is closed with a ResourceWarning that says
so. pytest.ini keeps it an error when the project's own code (python-backend/,
sandbox_manager/) made the socket: a leak of ours. One a test's client or a library made is
listed in the warnings summary and fails nothing: the product runs in processes of its own,
and it is no fault of the test that happened to be running."""

import socket
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = (str(ROOT / "python-backend" / "aios") + "/", str(ROOT / "sandbox_manager") + "/")
THEIRS = "a socket a test or a library left open"  # pytest.ini: shown, not an error
MINE = "a socket the project's code left open"


def where_from(frames: traceback.StackSummary) -> str:
    """The frames, innermost first, one "path:line function" each."""
    return " < ".join(f"{frame.filename.removeprefix(str(ROOT) + '/')}:{frame.lineno} {frame.name}"
                      for frame in reversed(frames))


class SocketLeaks:
    def __init__(self):
        self.running = "(no test yet)"
        # fd -> (the test running, whether our code made it, where): an open fd is unique
        self.made: dict[int, tuple[str, bool, str]] = {}

    def install(self) -> None:
        init, leaks = socket.socket.__init__, self

        def remembering_init(sock, *args, **kwargs):
            init(sock, *args, **kwargs)
            frames = traceback.extract_stack(limit=12)[:-1]
            ours = any(frame.filename.startswith(OURS) for frame in frames)
            leaks.made[sock.fileno()] = (leaks.running, ours, where_from(frames))

        def closing_del(sock):  # in place of _socket.socket's finalizer, which only warns
            if sock.fileno() == -1:
                return
            made_in, ours, stack = leaks.made.get(sock.fileno(), ("?", False, "?"))
            what = MINE if ours else THEIRS
            described = repr(sock)
            sock.close()
            warnings.warn(f"{what}, closed by the garbage collector while {leaks.running} "
                          f"ran: {described}, made while {made_in} ran, in {stack}",
                          ResourceWarning, stacklevel=2)

        socket.socket.__init__ = remembering_init
        socket.socket.__del__ = closing_del

    def pytest_runtest_setup(self, item) -> None:
        self.running = item.nodeid
