"""Network policy for what the agent's tools may reach: the address guard and the browse
proxy that enforces it on every connection."""

from .guard import AddressGuard, Verdict, describe_address

__all__ = ["AddressGuard", "Verdict", "describe_address"]
