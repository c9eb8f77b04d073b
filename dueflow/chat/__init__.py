"""`dueflow chat`: a terminal chat with a model of any OpenAI-compatible endpoint (OpenRouter by
default) that works on the person's tasks through Dueflow's MCP tools, and only through them."""
