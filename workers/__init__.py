"""Event consumers (recurrence, reminders, notifications, audit, realtime) and their hosts.

The event backbone (outbox relay, buses, worker hosts) lands with issue #3; the outbox rows they
consume are already written by every use case in domain.service.
"""
