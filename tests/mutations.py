"""Mutating a JSON document at random, for the connectors' property tests: every input must end
as a Signalement or a typed error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st


def chemins(x: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into a document, the root's () first."""
    yield prefix
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        yield from chemins(v, (*prefix, k))


def muter(doc: Any, data: st.DataObject, valeurs: st.SearchStrategy) -> bool:
    """One to three changes in place (a key removed, or a value replaced by one of ``valeurs``);
    False when the document has nothing left to change."""
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in chemins(doc) if p]
        if not paths:
            return False
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(valeurs)
    return True
