"""AI-OS sandbox manager: runs untrusted code in hardened, throwaway Docker containers."""
