#!/usr/bin/env python3
"""A partner producing a canonical Signalement straight to Kafka, on confluent-kafka (librdkafka).

Stand-alone: it needs ``confluent-kafka`` and ``fastavro`` only, not Aiguillage. It reads a
signalement in canonical fields with the NIR in clear (``signalement-kafka.json`` beside it),
checks the NIR key, replaces the NIR by its pseudonym, and produces one Avro value in the
Confluent wire format on ``signalements.entrants.<source>``, then prints the
``signalement_id``. See the README, "Producing directly to Kafka"::

    AIGUILLAGE_PSEUDONYM_KEY=... python connectors/exemples/producteur_kafka.py \\
        --bootstrap kafka:9092 --source cpam --fichier connectors/exemples/signalement-kafka.json \\
        [--schema-registry http://registry:8081] [-X security.protocol=SASL_SSL -X ...]

Exit status: 0 once the broker acknowledged the write (``acks=all``, idempotent), 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import re
import struct
import sys
import urllib.parse
import urllib.request
import uuid
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import fastavro
from confluent_kafka import KafkaException, Producer

# The UUIDv5 namespace of signalement ids: uuid5(NAMESPACE_URL, "urn:aiguillage:signalement").
NAMESPACE_SIGNALEMENT = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aiguillage:signalement")
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "Signalement.v2.avsc"
_NIR = re.compile(r"^[1-478]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2[AB])\d{6}\d{2}$")


def signalement_id(source: str, reference: str) -> str:
    """The same reference always gives the same id: a resend is the same signalement."""
    return str(uuid.uuid5(NAMESPACE_SIGNALEMENT, f"{source}:{reference}"))


def pseudonyme(nir: str, cle: bytes) -> str:
    """HMAC-SHA256 of the checked NIR (15 characters, no spaces, 2A/2B upper-case), as hex."""
    n = re.sub(r"[\s.\-]", "", nir).upper()
    if not _NIR.match(n):
        raise ValueError("nir: expected 13 characters (2A/2B for Corsica) and a 2-digit key")
    if int(n[13:]) != 97 - int(n[:13].replace("2A", "19").replace("2B", "18")) % 97:
        raise ValueError("nir: the key does not match (97 - number mod 97)")
    return hmac.new(cle, n.encode("ascii"), hashlib.sha256).hexdigest()


def schema_id(registry: str | None, topic: str, schema: dict) -> int:
    """With a registry: the id of this schema under ``<topic>-value`` (TopicNameStrategy), which
    the hub registered at its start (a lookup: the partner needs no right to register). Without:
    the hub's fixed id of ``Signalement.v2``, crc32 of name and version (``aiguillage/codec.py``)."""
    if not registry:
        return (zlib.crc32(b"Signalement.v2") & 0x7FFFFFFF) or 1
    subject = urllib.parse.quote(f"{topic}-value", safe="")
    req = urllib.request.Request(f"{registry.rstrip('/')}/subjects/{subject}",
                                 data=json.dumps({"schema": json.dumps(schema)}).encode(), method="POST",
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # 404 if the hub does not know this schema
        return int(json.load(resp)["id"])


def signalement(doc: dict, source: str, cle: bytes) -> dict:
    """Canonical fields (the NIR in clear) -> the Signalement record, the NIR replaced."""
    champs = dict(doc)
    nir = champs.pop("nir")
    for d in ("arret_debut",):
        if champs.get(d):
            champs[d] = date.fromisoformat(champs[d])
    return {
        "signalement_id": signalement_id(source, champs["source_ref"]),
        "source": source,
        "recu_le": datetime.now(UTC),
        "nir_pseudonyme": pseudonyme(nir, cle),
        **champs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    p.add_argument("--source", required=True, help="your source: the topic is signalements.entrants.<source>")
    p.add_argument("--fichier", type=Path, default=Path(__file__).with_name("signalement-kafka.json"))
    p.add_argument("--reference", help="your reference, instead of the file's source_ref")
    p.add_argument("--schema-registry", help="Confluent-compatible registry URL (none: the hub's fixed ids)")
    p.add_argument("--schema", type=Path, default=SCHEMA)
    p.add_argument("-X", dest="config", action="append", default=[], metavar="KEY=VALUE",
                   help="a librdkafka setting (security.protocol, sasl.mechanism, ssl.ca.location...)")
    args = p.parse_args(argv)
    cle = os.environ.get("AIGUILLAGE_PSEUDONYM_KEY")
    if not cle:
        print("AIGUILLAGE_PSEUDONYM_KEY is not set: the pseudonym key, given by the hub's operators", file=sys.stderr)
        return 1
    doc = json.loads(args.fichier.read_text(encoding="utf-8"))
    if args.reference:
        doc["source_ref"] = args.reference
    topic = f"signalements.entrants.{args.source}"
    raw = json.loads(args.schema.read_text(encoding="utf-8"))
    try:
        record = signalement(doc, args.source, cle.encode())
    except (ValueError, KeyError) as exc:
        print(f"refused before sending: {exc}", file=sys.stderr)
        return 1
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id(args.schema_registry, topic, raw)))  # magic byte, schema id
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw), record)

    config = {"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True}
    config |= dict(kv.split("=", 1) for kv in args.config)
    producer = Producer(config)
    erreurs: list[str] = []

    def livre(err: object, _msg: object) -> None:
        if err is not None:
            erreurs.append(str(err))

    try:
        # Key: the pseudonym, so that one assuré's signalements stay in one partition.
        producer.produce(topic, value=buf.getvalue(), key=record["nir_pseudonyme"].encode(), on_delivery=livre)
        restant = producer.flush(30)
    except KafkaException as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return 1
    if erreurs or restant:
        print(f"not acknowledged: {erreurs or 'timeout'}", file=sys.stderr)
        return 1
    print(record["signalement_id"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
