"""The Dueflow MCP server: tools over the task domain, and the `dueflow` command."""
