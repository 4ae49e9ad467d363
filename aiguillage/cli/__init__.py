"""The ``aiguillage`` command line, one module per command group.

- :mod:`.main`: the Typer app; the hub's processes (``up``, ``worker``, ``gateway``, ``sink``),
  ``topics``, ``db``, ``acls``, ``bench`` (from :mod:`aiguillage.bench.cli`);
- :mod:`.partenaires`: ``ingest``, ``dlq``, ``tokens``;
- :mod:`.routing`: ``routing explain``, ``routing check``;
- :mod:`.kafka`: ``kafka fetch``, ``kafka up``;
- :mod:`.bilan`: ``bilan``, the yearly report;
- :mod:`.demo`: ``demo``, simulated partners and caseworkers.
"""

from aiguillage.cli.main import app, main

__all__ = ["app", "main"]
