"""A change's life: propose, confirm, apply, report, settle an unknown outcome, schedule, undo."""
