"""The tables' changelogs are JSON written by Faust: with orjson (issue 22), and readable both ways."""

from __future__ import annotations

import json

import faust.utils.json as faust_json
from faust.serializers import codecs


def test_faust_writes_the_changelogs_with_orjson():
    assert faust_json.orjson is not None  # faust-streaming[orjson]; else Faust falls back to the json module


def test_a_changelog_written_by_the_json_module_reads_the_same_and_back():
    """A worker upgraded over a changelog an older one wrote (the json module escapes non-ASCII)."""
    js = codecs.get_codec("json")
    valeur = {"base": "Règle « arret-long » : l’assuré", "n": 3, "h": {"2": 1}, "aff": None, "l": [1, "a"]}
    assert js.loads(json.dumps(valeur).encode()) == valeur
    assert json.loads(js.dumps(valeur)) == valeur
    assert js.loads(js.dumps({3: 1})) == {"3": 1}  # int keys become strings, as with the json module
