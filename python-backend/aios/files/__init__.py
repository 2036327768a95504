"""The user's files: confinement to the allowed roots, content sniffing, reading by type."""
