"""The errors the domain raises; each one's message tells the caller what to fix."""

from __future__ import annotations

# a refusal repeats at most this many characters of a value the call sent
ECHOED = 60


def echo(value: object) -> str:
    """`value` as a refusal quotes it: its repr, cut to ECHOED characters of text."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= ECHOED:
        return repr(value)
    return repr(text[:ECHOED]) + "…"


class DueflowError(Exception):
    """Something Dueflow refused to do."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or " ".join((self.__doc__ or "").split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(DueflowError):
    """No such task for this user."""

    @classmethod
    def task(cls, task_id: str) -> NotFound:
        return cls(
            f"task_id: no task {echo(task_id)} for this user. Fix: use an id from list_tasks"
            " (deleted tasks appear with status='deleted')."
        )


class ValidationFailed(DueflowError):
    """A field's value is not acceptable."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}. Fix: {fix}.")


class Conflict(DueflowError):
    """The task changed since you read it."""


class IdempotencyConflict(Conflict):
    """This idempotency key was already used with different arguments."""


class InvalidTransition(DueflowError):
    """task_id: the task's status does not allow this change. Fix: get_task to see its status."""

    @classmethod
    def deleted(cls, action: str) -> InvalidTransition:
        return cls(f"task_id: the task is deleted. Fix: restore_task it first, then {action} it.")


class IdempotencyRace(Conflict):
    """idempotency_key: another request claimed this key at the same moment. Fix: repeat the call
    unchanged; it answers the task the other request created."""


class ConcurrentChange(Conflict):
    """task_id: the task changed while this change was being made. Fix: get_task, then repeat the
    change with its current version as expected_version."""


class Busy(DueflowError):
    """database: busy with other writes for longer than it waits (10 s); nothing was written.
    Fix: retry the call in a few seconds."""
