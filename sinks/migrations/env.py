"""Alembic environment: the URL comes from the Config built by ``sinks.db.alembic_config``."""

from alembic import context
from sqlalchemy import Engine, create_engine

from sinks.db import metadata

config = context.config


def run() -> None:
    connectable = config.attributes.get("connection") or create_engine(config.get_main_option("sqlalchemy.url") or "")
    if isinstance(connectable, Engine):
        with connectable.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    else:
        context.configure(connection=connectable, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
