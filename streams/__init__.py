"""Faust stream processors: validation, dedup, triage and routing, aggregates."""
