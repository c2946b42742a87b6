"""Alembic environment: run migrations on the connection ``bot.persistence.db.migrate`` hands over.

``bot.persistence.db.migrate`` opens an asyncio connection and calls Alembic inside ``run_sync``, passing the
synchronous connection in ``config.attributes["connection"]``. Run by hand (``alembic -c
bot/persistence/migrations/alembic.ini upgrade head``), it reads ``DATABASE_URL`` like the bot does.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from bot.persistence.db import create_engine, metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    _run(shared)
else:
    asyncio.run(_run_standalone(os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///flagops.sqlite3")))
