#!/bin/sh
# `dueflow chat` with OpenRouter: put your key in OPENROUTER_API_KEY (https://openrouter.ai/keys),
# then run this file. The chat spawns `dueflow serve` over stdio as DUEFLOW_USER, with these
# settings; add `--url http://127.0.0.1:8000/mcp` (and DUEFLOW_CHAT_TOKEN) to use a running server.
export DUEFLOW_USER="me"
export DUEFLOW_TIMEZONE="Europe/Berlin"
export DUEFLOW_CHAT_MODEL="openai/gpt-4.1-mini"
export DUEFLOW_CHAT_BASE_URL="https://openrouter.ai/api/v1"
exec /ABSOLUTE/PATH/TO/dueflow/.venv/bin/dueflow chat "$@"
