"""Sinks: consumers that write the hub's topics to SQL idempotently, committing offsets after the database."""
