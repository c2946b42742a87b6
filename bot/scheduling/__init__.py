"""Time: the scheduler, its durable jobs, reminders and digests, reading times."""
