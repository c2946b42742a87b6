"""Who a Slack user is in LaunchDarkly: linked accounts."""
