"""Everything that speaks Slack: the Bolt app and its error handler, the web front door, the
command router, the one sender (messenger), the Web API client, and the Block Kit builders."""
