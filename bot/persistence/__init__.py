"""The database: the schema, the migrations (Alembic) and the change store."""
