"""Test helpers for the network code: a resolver that answers from a table (no lookup ever
leaves the process), one that fails any test that looks a name up, and a local HTTP server
that runs for a `with` block."""

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


def table_resolver(names: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return names[host]
    return resolve


def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"the guard looked up {host}")


@contextmanager
def serving(server) -> Iterator:
    """A socketserver-style server (serve_forever, shutdown) on its own thread."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
