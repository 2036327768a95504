"""Tasks: what the desktop app asks for, their records, their event logs, and their runs."""
