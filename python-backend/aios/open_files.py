"""The web server holds one file descriptor per connected client, so the process's open-files
limit caps the clients it can hold, whatever gunicorn's worker_connections says."""

import resource
from typing import Optional

HEADROOM = 256  # Redis, log files, the health check's sockets, the listening socket


def raise_open_files_limit(clients: int) -> Optional[str]:
    """Raise the soft limit, at most to the hard one, to fit `clients` connections. Returns
    a warning naming the limit when it still cannot fit them, else None."""
    wanted = clients + HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if raised > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised >= wanted:
        return None
    return (f"open files are limited to {raised} (the hard limit), fewer than the {wanted} "
            f"that {clients} clients need (AIOS_WEB_WORKER_CONNECTIONS): past about "
            f"{raised - HEADROOM} clients new connections fail; raise the limit (`ulimit -n`, "
            f"compose's ulimits.nofile) or lower AIOS_WEB_WORKER_CONNECTIONS")
