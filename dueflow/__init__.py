"""Dueflow, the application: its settings, the composition root that wires every process, and
the `dueflow` command."""
