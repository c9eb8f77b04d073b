"""Event consumers and what hosts them.

The workers, one module each: `audit`, `recurrence`, `reminders`, `notifications`; `registry`
names them. `consumer` runs a handler through the inbox (once per event, stale versions marked).
Hosts: `embedded` hands published events to them in-process (parking failures in
`dead_letters`); `dapr_app` serves them as a Dapr app (`dueflow worker <name>`, wired in
dueflow/bootstrap.py). Beside them: `reminder_timer` and `notification_dispatch` (with the
`webhook` channel and its `address_guard`) deliver reminders, `retention` prunes the audit log,
`audit_api` serves its history, and `dapr_invoker` calls the task API for the recurrence worker.
"""
