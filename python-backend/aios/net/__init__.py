"""Network policy for what the agent's tools and sandboxes may reach: the address guard
(guard.py, with its deny list in deny.py) and the forward proxy that enforces it on every
connection (proxy.py). Two uses share them: the browse tool runs a proxy per call on
127.0.0.1 for Chromium, and a code sandbox with filtered internet gets an egress sidecar
(`python -m aios.net.egress`) that its pip, git and curl go through. Standard library only:
the sidecar runs this package in the sandbox image's bare python3.11."""

from .guard import AddressGuard, Verdict, describe_address

__all__ = ["AddressGuard", "Verdict", "describe_address"]
