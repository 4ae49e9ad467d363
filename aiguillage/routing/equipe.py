"""A team's decisions, pure: placement, waiting file, réorientation, escalation.

Each function takes what the team agent read for the message (:class:`Contexte`: the
signalement's case here if any, the assuré's open case here, the team's caseloads) and the
time, and returns a :class:`Decision`: the table writes to make and the outputs to send, in
order. Nothing here reads a clock, a table or a broker; ``streams/teams.py`` reads, calls
and sends. The decision tree of a new signalement (:func:`nouveau`):

1. already placed here with this sequence or later: send its Affectation again (a redelivery);
2. the assuré has an open case here: link to it, same caseworker (référent unique);
   or the case moved to another team: follow it (at most ``MAX_SAUTS`` hops);
3. not the assuré's territory's team: go there;
4. a named queue (consent, …): record it there, no caseworker;
5. a caseworker with the skill and room: the one with the most room (ties: smallest id);
6. all full: overflow to the neighbour team (which sends it back to wait if full too;
   read here at once when its partition is ours), or wait in this team's file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from aiguillage.domain import Affectation, Axe
from aiguillage.routing import priorite as prio
from aiguillage.routing.affectation import (
    Placement,
    avec_placement,
    choisir_assistant,
    nom_file,
    placer,
)
from aiguillage.routing.config_file import Moteur
from aiguillage.routing.messages import (
    Attendre,
    Escalade,
    Liberer,
    MessageEquipe,
    Nouveau,
    Reorienter,
)

MAX_SAUTS = 4


class Attente(BaseModel):
    """What a waiting file needs of a stored dossier: after a restart the worker reads every
    dossier it holds to rebuild its files, and validating each whole :class:`Dossier` (its
    Affectation with it) was most of that pass's seconds, the team deaf meanwhile."""

    model_config = ConfigDict(extra="ignore")
    equipe: str
    assistant: str | None
    priorite: int
    recu_le: datetime
    special: bool = False  # a named queue: no caseworker is given from it
    lie_a: str | None = None  # linked to the assuré's open case here (no case of its own)

    @property
    def en_attente(self) -> bool:
        return self.assistant is None and not self.special and not self.lie_a


def en_file(sid: str, stocke: dict[str, Any] | None) -> tuple[str, prio.EnAttente] | None:
    """A stored dossier (the ``dossiers`` table's JSON) as ``(team, its file's item)``, or None when
    it waits in no file. Read by hand: a rebuild reads every dossier the worker holds, and even
    :class:`Attente`'s validation was a third of its time; a dossier that reads badly is validated,
    for the error that names what is wrong."""
    if not stocke:
        return None
    try:
        if stocke.get("assistant") is not None or stocke.get("special") or stocke.get("lie_a"):
            return None
        return stocke["equipe"], prio.EnAttente(sid, int(stocke["priorite"]), datetime.fromisoformat(stocke["recu_le"]))
    except (KeyError, TypeError, ValueError):
        a = Attente.model_validate(stocke)
        return (a.equipe, prio.EnAttente(sid, a.priorite, a.recu_le)) if a.en_attente else None


class Dossier(Attente):
    """``dossiers[signalement_id]``: a case a team holds, given to a caseworker or waiting."""

    axe: Axe
    sequence: int
    file: str
    base: str  # the stateless decision's explanation, before the placement's
    aff: Affectation
    reorientation: str | None = None  # the suivi that made it, if a réorientation


class Ouvert(BaseModel):
    """``assures_equipe["team|nir_pseudonyme"]``: the assuré's open case here, or where it moved."""

    model_config = ConfigDict(extra="ignore")
    dossier: str | None = None
    transfere: str | None = None


# -- what a decision writes and sends ----------------------------------------------------

@dataclass(frozen=True)
class PoserDossier:
    sid: str
    dossier: Dossier


@dataclass(frozen=True)
class OterDossier:
    sid: str
    equipe: str


@dataclass(frozen=True)
class PoserCharge:
    equipe: str
    assistant: str
    n: int


@dataclass(frozen=True)
class PoserOuvert:
    cle: str
    ouvert: Ouvert | None  # None: the entry goes


@dataclass(frozen=True)
class CompterEscalade:
    equipe: str
    n: int


@dataclass(frozen=True)
class EmettreAffectation:
    aff: Affectation


@dataclass(frozen=True)
class Transmettre:
    equipe: str
    message: MessageEquipe


@dataclass(frozen=True)
class PublierFigure:
    indicateur: str
    dimensions: dict[str, str]
    valeur: int


Ecriture = PoserDossier | OterDossier | PoserCharge | PoserOuvert | CompterEscalade
Sortie = EmettreAffectation | Transmettre | PublierFigure


@dataclass
class Decision:
    ecritures: list[Ecriture] = field(default_factory=list)
    sorties: list[Sortie] = field(default_factory=list)

    def ecritures_finales(self) -> list[Ecriture]:
        """The writes with each assuré entry and caseload set only to its last value: a full team
        sets the assuré's entry to "moved", then, its neighbour full too, to the waiting case.
        Each write is a changelog record; what the table ends up holding is the same."""
        derniere = {cle: i for i, e in enumerate(self.ecritures) if (cle := _cle_ecrite(e)) is not None}
        return [e for i, e in enumerate(self.ecritures) if (cle := _cle_ecrite(e)) is None or derniere[cle] == i]


def _cle_ecrite(e: Ecriture) -> tuple[str, ...] | None:
    """The entry a write sets outright (the last one wins), or None for a write kept as it is."""
    if isinstance(e, PoserOuvert):
        return ("ouvert", e.cle)
    if isinstance(e, PoserCharge):
        return ("charge", e.equipe, e.assistant)
    return None


@dataclass
class Contexte:
    """What the team agent read for one message, and this decision's own caseload changes."""

    equipe: str
    moteur: Moteur
    maintenant: datetime
    dossier: Dossier | None = None  # of the message's signalement
    ouvert: Ouvert | None = None  # the assuré's entry in this team
    dossier_ouvert: Dossier | None = None  # the case ``ouvert`` points to
    charge_lue: Callable[[str], int] = lambda _: 0  # this team's caseloads as the table has them
    voisine_pleine: Callable[[str, Axe], bool] = lambda _e, _a: False  # known only when local
    escalades: int = 0  # this team's missed first-contact deadlines so far
    _charges: dict[str, int] = field(default_factory=dict)

    def charge(self, assistant: str) -> int:
        return self._charges.get(assistant, self.charge_lue(assistant))

    def changer_charge(self, d: Decision, assistant: str, delta: int) -> None:
        n = max(0, self.charge(assistant) + delta)
        self._charges[assistant] = n
        d.ecritures.append(PoserCharge(self.equipe, assistant, n))


def cle_ouvert(equipe: str, nir_pseudonyme: str) -> str:
    return f"{equipe}|{nir_pseudonyme}"


def dossier_de(aff: Affectation, base: str, special: bool = False, lie_a: str | None = None,
               reorientation: str | None = None) -> Dossier:
    assert aff.equipe is not None
    return Dossier(equipe=aff.equipe, assistant=aff.assistant, axe=aff.axe, priorite=aff.priorite,
                   recu_le=aff.recu_le, sequence=aff.sequence, file=aff.file, special=special, lie_a=lie_a,
                   base=base, aff=aff, reorientation=reorientation)


def _emettre(d: Decision, aff: Affectation, base: str, **dossier: Any) -> None:
    d.sorties.append(EmettreAffectation(aff))
    d.ecritures.append(PoserDossier(aff.signalement_id, dossier_de(aff, base, **dossier)))


# -- the messages ----------------------------------------------------------------------------

def nouveau(ctx: Contexte, m: Nouveau) -> Decision:
    d, aff, equipe = Decision(), m.aff, ctx.equipe
    if ctx.dossier is not None and ctx.dossier.sequence >= aff.sequence:
        d.sorties.append(EmettreAffectation(ctx.dossier.aff))  # redelivered: already placed
        return d
    ouvert = ctx.ouvert
    if ouvert is not None and not m.deborde_de:
        lie = ctx.dossier_ouvert
        if ouvert.dossier and ouvert.dossier != aff.signalement_id and lie is not None and lie.equipe == equipe:
            qui = lie.assistant or "la file de l’équipe"
            final = aff.model_copy(update={
                "equipe": equipe, "assistant": lie.assistant, "file": lie.file, "dossier_id": ouvert.dossier,
                "explication": f"{aff.explication.rstrip('.')} ; rattaché au dossier ouvert de l’assuré, suivi par {qui} (référent unique).",
            })
            _emettre(d, final, aff.explication, lie_a=ouvert.dossier)
            return d
        if ouvert.transfere and m.sauts < MAX_SAUTS:
            d.sorties.append(Transmettre(ouvert.transfere, m.model_copy(update={"sauts": m.sauts + 1})))
            return d
    territoire = m.territoire or equipe
    if territoire != equipe and not m.deborde_de and m.sauts < MAX_SAUTS:
        d.sorties.append(Transmettre(territoire, m.model_copy(update={"sauts": m.sauts + 1})))
        return d
    cle = cle_ouvert(equipe, aff.nir_pseudonyme)
    if not m.placer:
        final = aff.model_copy(update={"equipe": equipe})
        _emettre(d, final, aff.explication, special=True)
        d.ecritures.append(PoserOuvert(cle, Ouvert(dossier=aff.signalement_id)))
        return d
    p = placer(ctx.moteur, equipe, aff.axe, ctx.charge, deja_deborde=bool(m.deborde_de))
    if p.deborder_vers:
        d.ecritures.append(PoserOuvert(cle, Ouvert(transfere=p.deborder_vers)))
        if ctx.voisine_pleine(p.deborder_vers, aff.axe):
            # What the neighbour would answer, without the two hops there and back.
            return _attendre(ctx, d, Attendre(aff=aff, raison=f"{p.raison}, pleine aussi"))
        d.sorties.append(Transmettre(p.deborder_vers, m.model_copy(update={
            "deborde_de": equipe, "raison_debordement": p.raison})))
        return d
    if p.assistant is None and m.deborde_de:
        # The neighbour is full too: the signalement waits in its own territory's file.
        d.sorties.append(Transmettre(m.deborde_de, Attendre(aff=aff, raison=f"{m.raison_debordement}, pleine aussi")))
        return d
    _placer_et_emettre(ctx, d, aff, p, reorientation=m.reorientation, deborde_de=m.deborde_de,
                       raison_debordement=m.raison_debordement)
    return d


def attendre(ctx: Contexte, m: Attendre) -> Decision:
    return _attendre(ctx, Decision(), m)


def _attendre(ctx: Contexte, d: Decision, m: Attendre) -> Decision:
    aff = m.aff
    if ctx.dossier is not None and ctx.dossier.sequence >= aff.sequence:
        d.sorties.append(EmettreAffectation(ctx.dossier.aff))  # redelivered
        return d
    # A case may have closed here while the signalement was at the neighbour's: look again.
    p = placer(ctx.moteur, ctx.equipe, aff.axe, ctx.charge, deja_deborde=True)
    if p.assistant:
        p = Placement(ctx.equipe, p.assistant, raison=f"{m.raison} ; de retour, {p.raison}")
    else:
        p = Placement(ctx.equipe, raison=f"{m.raison} ; le signalement attend dans la file de {ctx.equipe}")
    _placer_et_emettre(ctx, d, aff, p)
    return d


def _placer_et_emettre(ctx: Contexte, d: Decision, aff: Affectation, p: Placement, reorientation: str | None = None,
                       deborde_de: str | None = None, raison_debordement: str | None = None) -> None:
    if deborde_de:
        p = Placement(p.equipe, p.assistant, raison=f"{raison_debordement} : {p.raison}")
    changes: dict[str, Any] = {"file_precedente": nom_file(deborde_de, aff.axe)} if deborde_de else {}
    final = avec_placement(aff, p, **changes)
    if final.assistant:
        ctx.changer_charge(d, final.assistant, +1)
    _emettre(d, final, aff.explication, reorientation=reorientation)
    d.ecritures.append(PoserOuvert(cle_ouvert(ctx.equipe, aff.nir_pseudonyme), Ouvert(dossier=aff.signalement_id)))


def liberer(ctx: Contexte, m: Liberer, file: Callable[[], Iterable[Dossier]]) -> Decision:
    """The case ended: free its caseworker, then give waiting work (``file``: this team's waiting
    dossiers in file order, read lazily; see :func:`remplir`)."""
    d = Decision()
    if _retirer(ctx, d, m.sid):
        remplir(ctx, d, file())
    return d


def _retirer(ctx: Contexte, d: Decision, sid: str) -> Dossier | None:
    dossier = ctx.dossier
    if dossier is None or dossier.equipe != ctx.equipe:
        return None  # not held here (a late or misdirected message): nothing to free
    d.ecritures.append(OterDossier(sid, ctx.equipe))
    if dossier.assistant and not dossier.lie_a:
        ctx.changer_charge(d, dossier.assistant, -1)
    if ctx.ouvert is not None and ctx.ouvert.dossier == sid:
        d.ecritures.append(PoserOuvert(cle_ouvert(ctx.equipe, dossier.aff.nir_pseudonyme), None))
    return dossier


def remplir(ctx: Contexte, d: Decision, file: Iterable[Dossier]) -> None:
    """Give waiting work, most urgent (with ageing) then oldest first, to caseworkers with room.
    ``file`` yields this team's waiting dossiers in file order; it is read only as far as needed."""
    m, maintenant = ctx.moteur, ctx.maintenant
    eq = m.equipes.get(ctx.equipe)
    if eq is None:
        return
    bloques: set[Axe] = set()
    for dossier in file:
        if dossier.axe in bloques:
            continue
        choix = choisir_assistant(eq, dossier.axe, ctx.charge)
        if choix is None:
            bloques.add(dossier.axe)
            if len(bloques) == len(Axe):
                return
            continue
        a, libre = choix
        base = dossier.aff.model_copy(update={"explication": dossier.base})
        p = Placement(ctx.equipe, a.id, raison=(
            f"attribué à {a.id} après {max(0, (maintenant - dossier.recu_le).days)} jours d’attente, "
            f"compétence {dossier.axe.value}, le plus de place ({libre} sur {a.capacite})"))
        final = avec_placement(base, p, file=dossier.file, sequence=dossier.sequence + 1, nature="attribution",
                               decide_le=maintenant, config_version=m.version)
        ctx.changer_charge(d, a.id, +1)
        _emettre(d, final, dossier.base)
        if choisir_assistant(eq, dossier.axe, ctx.charge) is None:  # that was the axe's last room
            bloques.add(dossier.axe)
            if len(bloques) == len(Axe):
                return


def reorienter(ctx: Contexte, m: Reorienter, file: Callable[[], Iterable[Dossier]]) -> Decision:
    d = Decision()
    if ctx.dossier is None or ctx.dossier.reorientation == m.suivi_id:
        return d  # not held here, or redelivered
    ancien = _retirer(ctx, d, m.sid)
    if ancien is None:
        return d
    remplir(ctx, d, file())
    nouvelle = reorientation(ancien.aff, m.vers, m.quand, ctx.moteur.version, m.assistant, ctx.maintenant)
    d.sorties.append(Transmettre(nouvelle.equipe or ctx.equipe, Nouveau(
        aff=nouvelle, placer=True, territoire=nouvelle.equipe, reorientation=m.suivi_id)))
    return d


def escalader(ctx: Contexte, m: Escalade) -> Decision:
    d, dossier = Decision(), ctx.dossier
    if dossier is None or dossier.equipe != ctx.equipe:
        return d
    if dossier.aff.echeance_premier_contact != m.echeance:
        return d  # already escalated for this breach (the deadline moved)
    final = escalade(dossier.aff, ctx.moteur, ctx.maintenant)
    _emettre(d, final, dossier.base, special=dossier.special, lie_a=dossier.lie_a, reorientation=dossier.reorientation)
    n = ctx.escalades + 1
    d.ecritures.append(CompterEscalade(ctx.equipe, n))
    d.sorties.append(PublierFigure("escalades-premier-contact", {"equipe": ctx.equipe}, n))
    return d


def decider(ctx: Contexte, m: MessageEquipe, file: Callable[[], Iterable[Dossier]]) -> Decision:
    """One message to this team: the decision it takes."""
    if isinstance(m, Nouveau):
        return nouveau(ctx, m)
    if isinstance(m, Attendre):
        return attendre(ctx, m)
    if isinstance(m, Liberer):
        return liberer(ctx, m, file)
    if isinstance(m, Reorienter):
        return reorienter(ctx, m, file)
    return escalader(ctx, m)


# -- new decisions from old ones ---------------------------------------------------------------

def reorientation(ancienne: Affectation, vers: str, quand: datetime, version: str, assistant: str | None,
                  maintenant: datetime) -> Affectation:
    """The new base decision after a caseworker's réorientation (``axe:X`` or ``equipe:Y``)."""
    genre, _, cible = vers.partition(":")
    axe = Axe(cible) if genre == "axe" else ancienne.axe
    equipe = cible if genre == "equipe" else ancienne.equipe
    qui = assistant or "l’équipe"
    return ancienne.model_copy(update={
        "sequence": ancienne.sequence + 1, "nature": "reorientation", "axe": axe, "equipe": equipe, "dossier_id": None,
        "assistant": None, "file": nom_file(equipe, axe) if equipe else ancienne.file, "file_precedente": ancienne.file,
        "regle": "reorientation", "config_version": version, "decide_le": maintenant,
        "explication": f"Réorientation par {qui} le {quand.date().isoformat()} depuis la file {ancienne.file} vers {vers} "
                       f"(configuration {version})",
    })


def escalade(aff: Affectation, moteur: Moteur, maintenant: datetime) -> Affectation:
    """The first contact was missed by its due date: a higher priorité and a new deadline."""
    e = moteur.config.escalade
    p = prio.escalader(aff.priorite, e.hausse_priorite)
    echeance = maintenant.date() + timedelta(days=e.nouveau_delai_jours)
    explication = (
        f"Escalade : aucun premier contact à l’échéance du {aff.echeance_premier_contact:%d/%m/%Y}, "
        f"priorité relevée de {aff.priorite} à {p}, nouvelle échéance le {echeance:%d/%m/%Y} "
        f"(configuration {moteur.version}) ; reste dans la file {aff.file}"
        + (f" chez {aff.assistant}" if aff.assistant else "") + "."
    )
    return aff.model_copy(update={
        "sequence": aff.sequence + 1, "nature": "escalade", "priorite": p, "echeance_premier_contact": echeance,
        "regle": "echeance-premier-contact", "config_version": moteur.version, "explication": explication,
        "decide_le": maintenant,
    })
