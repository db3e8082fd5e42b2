"""MCP servers' tools in the workspace tool registry (arrives with the MCP issue)."""
