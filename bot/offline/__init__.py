"""The offline parts: the console, the fake Slack Web API and the payload driver that signs
requests as Slack does. Never imported when the bot serves Slack."""
