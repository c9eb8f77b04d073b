"""The MCP server: authentication, middleware, the tool groups it registers (task_tools,
agenda_tool, reminder_tools, history_tools), each tool thin: parse, resolve the user, one domain
call, shape the answer; and the prompts (prompts)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Callable
from typing import Any

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import Middleware

from domain.access import OwnTokens, PersonalTokens
from domain.adapters.calendar_files import CalendarFiles
from domain.adapters.foreground import Foreground
from domain.history import HistoryReader
from domain.reminder_service import ReminderService
from domain.service import TaskService
from mcp_server.agenda_tool import register_agenda_tool
from mcp_server.calendar_tools import register_calendar_tools
from mcp_server.fairness import CallLimits, PerUserLimits
from mcp_server.history_tools import register_history_tools
from mcp_server.metered import ToolMetrics
from mcp_server.outcomes import CallLog
from mcp_server.prompts import register_prompts
from mcp_server.reminder_tools import register_reminder_tools
from mcp_server.resource_updates import ResourceWatchers, serve_resource_updates
from mcp_server.resources import register_resources
from mcp_server.scopes import ScopeGuard
from mcp_server.sessions import SessionRegistry, tracker
from mcp_server.task_tools import register_task_tools
from mcp_server.tooling import LeanListing, Refusals, SentArguments


class TokenUsers(TokenVerifier):
    """Bearer tokens: those of DUEFLOW_TOKENS, each standing for one user with every scope; the
    personal access tokens in the database (domain.access), with their own scopes; and, with
    OAuth configured, JWT access tokens of its issuer (mcp_server.oauth)."""

    def __init__(
        self,
        users: dict[str, str],
        personal: PersonalTokens | None = None,
        oauth: TokenVerifier | None = None,
    ) -> None:
        super().__init__()
        self._own = OwnTokens(users, personal)
        self._oauth = oauth

    async def verify_token(self, token: str) -> AccessToken | None:
        if not self._own.knows(token):
            return None if self._oauth is None else await self._oauth.verify_token(token)
        found = await self._own.bearer(token)
        if found is None:
            return None
        claims = {"sub": found.user_id}
        if found.token_id is not None:
            claims["token_id"] = found.token_id
        return AccessToken(
            token=token, client_id=found.user_id, scopes=list(found.scopes), claims=claims
        )


class ServingRequests(Middleware):
    """Marks every request as foreground work, which the process's outbox relay gives way to."""

    def __init__(self, foreground: Foreground) -> None:
        self._foreground = foreground

    async def on_request(self, context: Any, call_next: Any) -> Any:
        with self._foreground.serving():
            return await call_next(context)


class TodayInInstructions(Middleware):
    """Puts today's date in the user's zone into the instructions of every handshake."""

    def __init__(self, instructions: Callable[[], str]) -> None:
        self._instructions = instructions

    async def on_initialize(self, context: Any, call_next: Any) -> Any:
        result = await call_next(context)
        if result is None:
            return None
        return result.model_copy(update={"instructions": self._instructions()})

    async def on_discover(self, context: Any, call_next: Any) -> Any:
        result = await call_next(context)
        if isinstance(result, mt.DiscoverResult):
            result = result.model_copy(update={"instructions": self._instructions()})
        return result


def build_server(
    service: TaskService,
    default_user: str | None,
    auth: TokenVerifier | None = None,
    *,
    reminders: ReminderService | None = None,
    history: HistoryReader | None = None,
    sessions: SessionRegistry | None = None,
    foreground: Foreground | None = None,
    limits: CallLimits | None = None,
    metrics: bool = True,
    calendar: CalendarFiles | None = None,
    public_url: str | None = None,
    watchers: ResourceWatchers | None = None,
) -> FastMCP:
    """The MCP server for `service`; without a token, calls act as `default_user` (stdio);
    with `history`, task_history reads the audit log through it; with `foreground`, every
    request is counted there (see OutboxRelay); with `limits`, each token user's calls are held
    to them (the HTTP transports); with `metrics`, every tool call is counted and timed
    (mcp_server.metered); with `calendar`, the iCalendar tools (feed URLs under `public_url`);
    `watchers` (one per process, shared by its servers) hear of the tasks each tool call changes
    (mcp_server.resource_updates)."""

    def instructions() -> str:
        now = dt.datetime.now(service.user_zone)
        return (
            "Dueflow keeps the user's tasks: due dates, priorities, tags, reminders, recurrence."
            f" Today is {now:%A %Y-%m-%d}, {now:%H:%M} in the user's time zone"
            f" {service.default_timezone}: read 'tomorrow' or '5pm' there. Act on a task by the"
            " id an answer or list_tasks gave (find one by title with list_tasks query); name it"
            " to the user by its title. For 'what is on' start with agenda. Before writing an"
            " unusual recurrence ('every other ...', month ends) call preview_recurrence and show"
            " the dates; after a write, tell the user the due and RRULE the answer shows."
        )

    mcp = FastMCP(
        "dueflow",
        version=importlib.metadata.version("dueflow"),
        instructions=instructions(),
        auth=auth,
        middleware=[
            CallLog(),
            *([ToolMetrics()] if metrics else []),
            Refusals(),
            ScopeGuard(),
            *([PerUserLimits(limits)] if limits is not None else []),
            *([ServingRequests(foreground)] if foreground is not None else []),
            SentArguments(),
            TodayInInstructions(instructions),
            LeanListing(),
            *tracker(sessions, default_user),
        ],
        mask_error_details=True,
        # "10" is not a number and "yes" not a boolean: a caller that sends them is told so
        strict_input_validation=True,
    )

    def user() -> str:
        token = get_access_token()
        if token is not None:
            return token.client_id
        if default_user is None:
            raise ToolError("Authentication required: send a bearer token from DUEFLOW_TOKENS.")
        return default_user

    def caller() -> str | None:
        token = get_access_token()
        return token.client_id if token is not None else default_user

    register_task_tools(mcp, user, service)
    register_agenda_tool(mcp, user, service)
    register_prompts(mcp, service)
    register_resources(mcp, user, service)
    serve_resource_updates(mcp, ResourceWatchers() if watchers is None else watchers, caller)
    if reminders is not None:
        register_reminder_tools(mcp, user, reminders)
    if history is not None:
        register_history_tools(mcp, user, service, history)
    if calendar is not None:
        register_calendar_tools(mcp, user, calendar, public_url)
    return mcp
