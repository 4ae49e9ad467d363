"""The routing core's decisions played out over plain dicts: no Faust, no broker, no agent code.

A :class:`Monde` holds the tables the agents keep (assurés, caseloads, dossiers, open cases,
life cycles) as dicts and applies :mod:`aiguillage.routing.accueil`, ``.equipe`` and
``.cycle`` to them, delivering each output to the stage that reads it until nothing is left:
what the worker does, minus the transport. The broker tests run the same decisions in Faust.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiguillage.dlq import Rejet
from aiguillage.domain import Affectation, Signalement, Suivi
from aiguillage.routing import accueil, cycle, equipe
from aiguillage.routing import priorite as prio
from aiguillage.routing.messages import MessageEquipe
from aiguillage.routing.rechargement import ConfigCourante


class Monde:
    def __init__(self, tmp: Path, yaml_text: str) -> None:
        path = tmp / "routing.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        self.config = ConfigCourante(path)
        self.assures: dict[str, accueil.Assure] = {}
        self.charges: defaultdict[str, int] = defaultdict(int)
        self.escalades: defaultdict[str, int] = defaultdict(int)
        self.dossiers: dict[str, equipe.Dossier] = {}
        self.ouverts: dict[str, equipe.Ouvert] = {}
        self.cycles: dict[str, dict[str, Any]] = {}
        self.affectations: list[Affectation] = []
        self.retours: list[dict[str, Any]] = []
        self.figures: list[equipe.PublierFigure] = []
        self._a_livrer: list[tuple[str, Any]] = []
        self._demandes: set[tuple[str, str]] = set()

    @property
    def moteur(self) -> Any:
        return self.config.moteur

    # -- what comes in ------------------------------------------------------------------------

    def signalement(self, s: Signalement, maintenant: datetime | None = None) -> None:
        t = maintenant or datetime.now(UTC)
        a = self.assures.get(s.nir_pseudonyme, accueil.Assure())
        r = accueil.accueillir(a, s, self.moteur, t)
        if r is None:
            return
        self.assures[s.nir_pseudonyme] = accueil.retenir(a, [(s, r)], t)
        self._a_livrer.append(("equipe", (r.equipe, r.message)) if isinstance(r, accueil.VersEquipe)
                              else ("affectation", r.aff))
        self._livrer(t)

    def suivi(self, s: Suivi, maintenant: datetime | None = None) -> Rejet | None:
        t = maintenant or datetime.now(UTC)
        issue = cycle.sur_suivi(self.cycles.get(s.signalement_id or ""), s, self.moteur.equipes, self.moteur.version, t)
        self._appliquer_cycle(s.signalement_id, issue)
        self._livrer(t)
        return issue.rejet

    def echeances(self, maintenant: datetime | None = None) -> int:
        """The deadlines' timer: a check per breach, asked once; then what follows."""
        t = maintenant or datetime.now(UTC)
        dues = {(sid, e) for sid, c in self.cycles.items() if (e := cycle.echeance_a_surveiller(c))
                and e < t.date().isoformat()}
        self._demandes &= dues
        nouvelles = sorted(dues - self._demandes)
        self._demandes |= set(nouvelles)
        self._a_livrer += [("echeance", d) for d in nouvelles]
        self._livrer(t)
        return len(nouvelles)

    # -- delivering each output to whom reads it ----------------------------------------------

    def _livrer(self, t: datetime) -> None:
        while self._a_livrer:
            quoi, x = self._a_livrer.pop(0)
            if quoi == "equipe":
                self._equipe(*x, t)
            elif quoi == "affectation":
                self.affectations.append(x)
                self._appliquer_cycle(x.signalement_id, cycle.sur_affectation(
                    self.cycles.get(x.signalement_id), x, self.moteur.equipes, self.moteur.version, t))
            else:
                sid, e = x
                self._appliquer_cycle(sid, cycle.sur_echeance(self.cycles.get(sid), e, self.moteur, t))

    def _appliquer_cycle(self, sid: str | None, issue: cycle.Issue) -> None:
        if issue.entree is not None and sid:
            self.cycles[sid] = issue.entree
        for s in issue.sorties:
            if isinstance(s, cycle.PublierRetour):
                self.retours.append(s.retour)
            elif isinstance(s, cycle.DireEquipe):
                self._a_livrer.append(("equipe", (s.equipe, s.message)))
            else:
                self._a_livrer.append(("affectation", s.aff))

    def _equipe(self, nom: str, m: MessageEquipe, t: datetime) -> None:
        aff = getattr(m, "aff", None)
        dossier = self.dossiers.get(aff.signalement_id if aff is not None else m.sid)  # type: ignore[union-attr]
        nir = aff.nir_pseudonyme if aff is not None else (dossier.aff.nir_pseudonyme if dossier else "")
        ouvert = self.ouverts.get(equipe.cle_ouvert(nom, nir))
        ctx = equipe.Contexte(
            nom, self.moteur, t, dossier, ouvert, self.dossiers.get(ouvert.dossier) if ouvert and ouvert.dossier else None,
            charge_lue=lambda a: self.charges[f"{nom}|{a}"], escalades=self.escalades[nom],
        )
        d = equipe.decider(ctx, m, lambda: self._file(nom, t))
        for e in d.ecritures:
            if isinstance(e, equipe.PoserDossier):
                self.dossiers[e.sid] = e.dossier
            elif isinstance(e, equipe.OterDossier):
                del self.dossiers[e.sid]
            elif isinstance(e, equipe.PoserCharge):
                self.charges[f"{e.equipe}|{e.assistant}"] = e.n
            elif isinstance(e, equipe.PoserOuvert):
                if e.ouvert is None:
                    self.ouverts.pop(e.cle, None)
                else:
                    self.ouverts[e.cle] = e.ouvert
            else:
                self.escalades[e.equipe] = e.n
        for s in d.sorties:
            if isinstance(s, equipe.EmettreAffectation):
                self._a_livrer.append(("affectation", s.aff))
            elif isinstance(s, equipe.Transmettre):
                self._a_livrer.append(("equipe", (s.equipe, s.message)))
            else:
                self.figures.append(s)

    def _file(self, nom: str, t: datetime) -> list[equipe.Dossier]:
        attente = [prio.EnAttente(sid, d.priorite, d.recu_le) for sid, d in self.dossiers.items()
                   if d.equipe == nom and d.en_attente]
        jours = self.moteur.config.vieillissement.jours_par_niveau
        return [self.dossiers[i.signalement_id] for i in prio.ordonner(attente, t, jours)]
