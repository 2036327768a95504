"""MCP in AI-OS: a client hub (configured servers' tools become agent tools named
`mcp__<server>__<tool>`) and a server (AI-OS's own tools for other MCP clients)."""
