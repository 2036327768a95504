"""Tools the agent can call: each a small module behind the interface in base.py."""
