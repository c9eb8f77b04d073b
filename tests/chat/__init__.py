"""`dueflow chat`, run as its own process against the real MCP server and a fake provider."""
