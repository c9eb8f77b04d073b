"""Event consumers and their hosts.

`consumer` runs handlers through the inbox; `audit` and `recurrence` are the workers; `registry`
names them; `embedded` hands published events to them in-process; `dapr_app` and `dapr_host`
serve one of them as a Dapr app (`dueflow worker <name>`); `audit_api` adds the audit app's
history and retention routes, and `retention` is the retention job they and the embedded timer run.
"""
