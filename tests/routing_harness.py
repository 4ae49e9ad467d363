"""The routing agents' logic without Faust: dict tables and topics that record what is sent.

Used by property tests to drive the real ``streams.equipes`` and ``streams.cycle`` code;
the broker tests run the same code inside the Faust worker.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiguillage.codec import AvroCodec
from aiguillage.domain import Affectation, Source
from aiguillage.routing.rechargement import ConfigCourante


def config_3_equipes(capacite: int = 1, version: str | None = None, prefixe: str = "") -> str:
    """Three teams on two départements: 31-a overflows into 31-b, 34-a waits.

    ``prefixe`` goes before caseworker ids, so that tests sharing a broker tell theirs apart.
    """
    head = f"version: {version}\n" if version else ""
    c = capacite
    texte = f"""
territoires:
  "31":
    nom: Haute-Garonne
    equipe_par_defaut: 31-a
    equipes:
      - id: 31-a
        communes: ["31555"]
        debordement: 31-b
        assistants:
          - {{id: a1, competences: [PDP, SPS], capacite: {3 * c}}}
          - {{id: a2, competences: [PDP], capacite: {2 * c}}}
          - {{id: a3, competences: [SPS], capacite: {2 * c}}}
      - id: 31-b
        communes: ["31483"]
        assistants:
          - {{id: b1, competences: [PDP, SPS], capacite: {2 * c}}}
  "34":
    nom: Hérault
    equipe_par_defaut: 34-a
    equipes:
      - id: 34-a
        assistants:
          - {{id: c1, competences: [PDP, SPS], capacite: {3 * c}}}
          - {{id: c2, competences: [SPS], capacite: {1 * c}}}
regles:
  - id: consentement-manquant
    pourquoi: consentement à recueillir
    si: {{consentement: false}}
    alors: {{axe: suggere, priorite: 3, delai_jours: 5, file: "{{departement}}-recueil-consentement"}}
  - id: arret
    pourquoi: arrêt de travail en cours
    si: {{arret_jours_min: 1}}
    alors: {{axe: PDP, priorite: 2, delai_jours: 10}}
  - id: defaut
    pourquoi: accompagnement en santé
    alors: {{axe: SPS, priorite: 4, delai_jours: 20}}
"""
    for a in ("a1", "a2", "a3", "b1", "c1", "c2"):
        texte = texte.replace(f"{{id: {a},", f"{{id: {prefixe}{a},")
    return head + texte


class FakeTopic:
    def __init__(self, name: str, sent: list[tuple[str, bytes | None, bytes]]) -> None:
        self.name = name
        self.sent = sent

    async def send(self, key: bytes | None = None, value: bytes = b"", partition: int | None = None) -> asyncio.Future:
        """Like Faust's Topic.send: returns the future of the broker's ack (here, already acked)."""
        self.sent.append((self.name, key, value))
        ack: asyncio.Future = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack

    def get_topic_name(self) -> str:
        return self.name


class FakeTopo:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        for name in ("affectations", "agregats", "equipes", "signalements", "rejetes", "suivis"):
            setattr(self, name, FakeTopic(name, self.sent))
        self.retours = {s: FakeTopic(f"retours.{s.value}", self.sent) for s in Source}
        self.charges: defaultdict[str, int] = defaultdict(int)
        self.escalades: defaultdict[str, int] = defaultdict(int)
        self.dossiers: dict[str, Any] = {}
        self.assures_equipe: dict[str, Any] = {}
        self.assures: dict[str, Any] = {}
        self.cycles: dict[str, Any] = {}
        self.app = SimpleNamespace(conf=SimpleNamespace(topic_partitions=4))


class Banc:
    """Team agent + life-cycle agent over fake tables; forwards are delivered until quiet."""

    def __init__(self, tmp: Path, yaml_text: str) -> None:
        from streams.cycle import Cycle
        from streams.equipes import Equipes
        from streams.routage import Routeur

        path = tmp / "routing.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        self.codec = AvroCodec()
        self.topo = FakeTopo()
        self.config = ConfigCourante(path)
        self.equipes = Equipes(self.topo, self.codec, self.config)  # type: ignore[arg-type]
        self.routeur = Routeur(self.topo, self.codec, b"k" * 32, self.config)  # type: ignore[arg-type]
        self.cycle = Cycle(self.topo, self.codec, self.config, self.routeur)
        self.vus = 0
        self.affectations: list[Affectation] = []

    def signalement(self, s: Any) -> None:
        """What the ingress agent does with a new (deduplicated) signalement, then all that follows."""
        asyncio.run(self._signalement(s))

    async def _signalement(self, s: Any) -> None:
        await self.routeur.router(s)
        await self.routeur.envoyer_aux_equipes()  # a batch of one
        await self._deliver([])

    def echeances(self) -> int:
        async def run() -> int:
            n = await self.cycle.verifier_echeances()
            await self._deliver([])
            return n

        return asyncio.run(run())

    def suivi(self, suivi: Any) -> Any:
        return asyncio.run(self._suivi(suivi))

    async def _suivi(self, suivi: Any) -> Any:
        rejet = await self.cycle.sur_suivi(suivi)
        self.cycle.etats.ecrire()  # a batch of one
        await self._deliver([])
        return rejet

    async def _deliver(self, pending: list[tuple[str, bytes | None, bytes]]) -> None:
        while True:
            new = self.topo.sent[self.vus:]
            self.vus = len(self.topo.sent)
            pending = pending + new
            if not pending:
                return
            name, key, value = pending.pop(0)
            if name == "equipes":
                assert key is not None
                await self.equipes.traiter_record(key, value)
                await self.equipes.publier_charges()  # a batch of one
            elif name == "affectations":
                data = self.codec.decode("Affectation", value)
                self.affectations.append(Affectation.model_validate(data))
                await self.cycle.sur_affectation(data)
                self.cycle.etats.ecrire()
            elif name == "signalements":
                await self.cycle.sur_echeance(json.loads(value))
                self.cycle.etats.ecrire()

    def sorties(self, topic_prefix: str) -> list[dict[str, Any]]:
        schema = {"retours": "Retour", "agregats": "Agregat"}[topic_prefix.split(".")[0]]
        return [self.codec.decode(schema, v) for n, _, v in self.topo.sent if n.startswith(topic_prefix)]
