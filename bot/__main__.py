"""``python -m bot`` (the ``flagops`` script): serve, console, sandbox, clock, worker.

::

    python -m bot                 serve Slack over HTTP on $PORT (Socket Mode if SLACK_APP_TOKEN is set)
    python -m bot console         the offline console: the same app against the sandbox and a fake Slack
    python -m bot sandbox ...     the in-memory LaunchDarkly sandbox as a server (see its --help)
    python -m bot clock           the scheduler alone (reminders, digests, expiry), no web server
    python -m bot worker          work the inbox: the commands and clicks the web processes acked
    python -m bot migrate         bring the database schema to the newest migration, then exit
    python -m bot webhook-setup   create LaunchDarkly's signed webhook (needs LD_ADMIN_TOKEN, once)

A configuration problem is printed as one message and the process exits with status 2; it is
never a traceback. Heavy modules are imported per subcommand so that ``--help`` and errors are fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings

USAGE = """usage: python -m bot [serve | console | sandbox ... | clock | worker | migrate]

  serve      (default) answer Slack: HTTP on $PORT, or Socket Mode when SLACK_APP_TOKEN is set
  console    try flagops offline: type /flag commands, click buttons, against a local sandbox
  sandbox    run the in-memory LaunchDarkly sandbox as a server (python -m bot sandbox --help)
  clock      run the scheduler alone (reminders, digests, card expiry); one runs at a time
  worker     work the inbox (commands and clicks the web processes acked); any number may run
  migrate    bring the database (DATABASE_URL) to the newest schema and exit (a release step)
  webhook-setup  create LaunchDarkly's signed webhook for channel subscriptions (reads
             LD_ADMIN_TOKEN, an admin-level token, for this command only)
"""

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand named by ``argv`` (default ``sys.argv[1:]``).

    Args:
        argv: command-line arguments after the program name.

    Returns:
        The process exit status: 0 on a clean stop, 2 on a usage or configuration error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "serve"
    try:
        if command == "serve":
            settings = _schema_ready(load_settings("serve"))
            from bot.slack.server import run_server

            return run_server(settings)
        if command == "console":
            settings = load_settings("console")
            from bot.offline.console import run_console

            return run_console(settings, sys.stdin, sys.stdout)
        if command == "sandbox":
            from bot.launchdarkly import sandbox

            status: int = sandbox.run(args)
            return status
        if command == "clock":
            settings = _schema_ready(load_settings("serve"))
            from bot.scheduling.scheduler import run_clock

            return run_clock(settings)
        if command == "worker":
            settings = _schema_ready(load_settings("serve"))
            from bot.slack.server import run_worker

            return run_worker(settings)
        if command == "migrate":
            settings = load_settings("migrate")
            return _migrate(settings)
        if command == "webhook-setup":
            settings = load_settings("serve")
            return _webhook_setup(settings)
        if command in {"-h", "--help", "help"}:
            print(USAGE)
            return 0
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    print(f"unknown command: {command}\n\n{USAGE}", file=sys.stderr)
    return EXIT_USAGE


def _schema_ready(settings: Settings) -> Settings:
    """The database at the newest schema before a long-running process starts serving.

    ``FLAGOPS_MIGRATE_ON_START`` (the default): ``python -m bot migrate`` runs as a child process
    (several processes starting at once take turns: see ``bot.persistence.db.migrate``), so that
    Alembic is never loaded into the process that serves (about 5 MB it would keep for nothing;
    bench/README.md). The settings returned say the migration is done. Otherwise the process
    refuses to start on a schema that is not at head.

    Raises:
        ConfigError: the child could not migrate (it printed why), or the schema is not at head.
    """
    if settings.flagops_migrate_on_start:
        import subprocess

        done = subprocess.run(
            [sys.executable, "-m", "bot", "migrate"], check=False, stdout=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise ConfigError("The database could not be migrated at start (the reason is above).")
        return settings.model_copy(update={"flagops_migrate_on_start": False})
    import asyncio

    from bot.persistence.db import require_current_schema

    asyncio.run(require_current_schema(settings.database_url))
    return settings


def _webhook_setup(settings: Settings) -> int:
    """Create the signed webhook (``bot.subscriptions.webhook.setup_webhook``); 2 when a setting is
    missing or LaunchDarkly refuses. Neither the admin token nor the secret is ever printed."""
    import asyncio

    from bot.config import AdminSettings
    from bot.persistence.db import create_engine, migrate
    from bot.subscriptions.store import SubscriptionStore
    from bot.subscriptions.webhook import SetupError, setup_webhook
    from bot.wiring import open_ld

    admin = AdminSettings().ld_admin_token

    async def run() -> str:
        if settings.flagops_migrate_on_start:
            await migrate(settings.database_url)
        engine = create_engine(settings.database_url)
        ld = open_ld(settings)
        try:
            result = await setup_webhook(settings, SubscriptionStore(engine), ld, admin)
        finally:
            await ld.aclose()
            await engine.dispose()
        replaced = f" (it replaces webhook {result.replaced}, now deleted)" if result.replaced else ""
        return f"LaunchDarkly's webhook {result.webhook_id} sends flag changes to {result.url}{replaced}."

    try:
        print(asyncio.run(run()))
    except SetupError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    return 0


def _migrate(settings: Settings) -> int:
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from bot.persistence.db import migrate

    try:
        asyncio.run(migrate(settings.database_url))
    except (OSError, SQLAlchemyError) as exc:
        # The database's own failures, by type (their text could hold the URL). Anything else is
        # a bug in a migration: its traceback reaches stderr whole (no value of a statement is in
        # it: the engine hides parameters), and a serving process then refuses to start.
        name = type(exc).__name__
        print(f"The database could not be migrated ({name}). Check DATABASE_URL.", file=sys.stderr)
        return 1
    print("the database schema is at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
