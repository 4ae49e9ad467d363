"""The routing configuration file (YAML): territories, teams, caseworkers, triage rules.

Validated by pydantic; every error names the YAML line and the field path, e.g.
``routing.yaml:42: regles.3.alors.priorite: Input should be less than or equal to 9``.
The version of a configuration is its explicit ``version:`` field, or else a hash of
the file's content, so that every Affectation says which configuration decided it.

:func:`charger` returns a :class:`Moteur`: the configuration compiled once (rule
predicates, commune and postcode lookups) so that routing one signalement is only
dictionary look-ups and a few comparisons.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiguillage.domain import Axe, Motif, Risque, Situation, Source

DEPARTEMENTS_OCCITANIE = ("09", "12", "31", "32", "46", "65", "81", "82", "11", "30", "34", "48", "66")
ATTENTE = "attente"


def fichier_par_defaut() -> Path:
    return Path(str(resources.files("aiguillage") / "routing.yaml"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Assistant(_Strict):
    id: str = Field(pattern=r"^[\w.-]+$")
    competences: list[Axe] = Field(min_length=1)
    capacite: int = Field(ge=0, le=500, description="active cases at most")


class Equipe(_Strict):
    id: str = Field(pattern=r"^[\w.-]+$")
    nom: str = ""
    communes: list[str] = []
    codes_postaux: list[str] = Field(default=[], description="5 digits, or a prefix ending in *")
    debordement: str = Field(default=ATTENTE, description="a neighbour team's id, or 'attente'")
    assistants: list[Assistant] = []


class Territoire(_Strict):
    nom: str
    equipe_par_defaut: str
    equipes: list[Equipe] = Field(min_length=1)


class Conditions(_Strict):
    """All given conditions must hold (AND); a list of Conditions in a rule is an OR."""

    source: list[Source] | None = None
    motif: list[Motif] | None = None
    risque: list[Risque] | None = None
    situation: list[Situation] | None = None
    axe_suggere: list[Axe | None] | None = None
    consentement: bool | None = None
    arret_jours_min: int | None = Field(default=None, ge=0)
    arret_jours_max: int | None = Field(default=None, ge=0)
    age_min: int | None = Field(default=None, ge=0, le=130)
    age_max: int | None = Field(default=None, ge=0, le=130)


class Decision(_Strict):
    axe: Literal["PDP", "SPS", "suggere"]
    axe_defaut: Axe = Axe.SPS
    priorite: int = Field(ge=1, le=9)
    delai_jours: int = Field(ge=0, le=365, description="first-contact delay")
    file: str | None = Field(
        default=None, description="a named queue, without caseworker; {departement} and {equipe} are replaced"
    )


class Regle(_Strict):
    id: str = Field(pattern=r"^[\w.-]+$")
    pourquoi: str = Field(min_length=3, description="the reason, as a manager would say it")
    si: Conditions | list[Conditions] = Conditions()
    alors: Decision


class Vieillissement(_Strict):
    jours_par_niveau: int = Field(default=5, ge=1, description="waiting days that gain one level of priorité")


class Escalade(_Strict):
    hausse_priorite: int = Field(default=2, ge=1, le=8)
    nouveau_delai_jours: int = Field(default=3, ge=1, le=60)


class RoutingConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    version: str | None = None
    territoires: dict[str, Territoire]
    file_hors_territoire: str = "hors-territoire"
    vieillissement: Vieillissement = Vieillissement()
    escalade: Escalade = Escalade()
    regles: list[Regle] = Field(min_length=1)


class ConfigInvalide(ValueError):
    """A routing file that cannot be used; ``problemes`` are ``file:line: path: message``."""

    def __init__(self, problemes: list[str]) -> None:
        super().__init__("invalid routing configuration:\n  " + "\n  ".join(problemes))
        self.problemes = problemes


# -- line numbers ---------------------------------------------------------------------------


def _ligne(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The line of the YAML node at ``path`` (or of its deepest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def _problemes_pydantic(exc: ValidationError, root: yaml.Node | None, nom: str) -> list[str]:
    out = []
    for err in exc.errors():
        # Union members show up in the loc as their class names: drop them for the path.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper() or p in ("list[Conditions]",)))
        out.append(f"{nom}:{_ligne(root, loc)}: {'.'.join(map(str, loc)) or '(file)'}: {err['msg']}")
    return out


# -- cross-references -------------------------------------------------------------------------


def _references(cfg: RoutingConfig) -> list[tuple[tuple[Any, ...], str]]:
    """What pydantic cannot see: ids unique, references resolved, a catch-all last rule."""
    errs: list[tuple[tuple[Any, ...], str]] = []
    equipes: dict[str, tuple[str, int]] = {}
    assistants: set[str] = set()
    for dep, terr in cfg.territoires.items():
        if not (len(dep) in (2, 3) and (dep.isdigit() or dep in ("2A", "2B"))):
            errs.append((("territoires", dep), "a département code is 2 digits (or 2A/2B, 97x)"))
        for i, eq in enumerate(terr.equipes):
            if eq.id in equipes:
                errs.append((("territoires", dep, "equipes", i, "id"), f"team {eq.id!r} is defined twice"))
            equipes[eq.id] = (dep, i)
            for j, a in enumerate(eq.assistants):
                if a.id in assistants:
                    errs.append((("territoires", dep, "equipes", i, "assistants", j, "id"), f"caseworker {a.id!r} is defined twice"))
                assistants.add(a.id)
            for j, cp in enumerate(eq.codes_postaux):
                if not (cp.isdigit() and len(cp) == 5) and not (cp.endswith("*") and cp[:-1].isdigit() and cp[:-1]):
                    errs.append((("territoires", dep, "equipes", i, "codes_postaux", j), "expected 5 digits or a prefix ending in *"))
        if terr.equipe_par_defaut not in {e.id for e in terr.equipes}:
            errs.append((("territoires", dep, "equipe_par_defaut"), f"{terr.equipe_par_defaut!r} is not a team of this territory"))
    for dep, terr in cfg.territoires.items():
        for i, eq in enumerate(terr.equipes):
            if eq.debordement != ATTENTE and eq.debordement not in equipes:
                errs.append((("territoires", dep, "equipes", i, "debordement"), f"expected 'attente' or a team id, {eq.debordement!r} is neither"))
            if eq.debordement == eq.id:
                errs.append((("territoires", dep, "equipes", i, "debordement"), "a team cannot overflow into itself"))
    ids: set[str] = set()
    for i, r in enumerate(cfg.regles):
        if r.id in ids:
            errs.append((("regles", i, "id"), f"rule {r.id!r} is defined twice"))
        ids.add(r.id)
    dernier = cfg.regles[-1]
    if dernier.si != Conditions():
        errs.append((("regles", len(cfg.regles) - 1, "si"), "the last rule must have no condition, so that every signalement matches one"))
    return errs


# -- loading --------------------------------------------------------------------------------


def charger_texte(texte: str, nom: str = "routing.yaml") -> Moteur:
    """Parse, validate and compile a configuration; raise :class:`ConfigInvalide` naming lines."""
    try:
        root = yaml.compose(texte, Loader=yaml.SafeLoader)
        data = yaml.safe_load(texte)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        ligne = mark.line + 1 if mark else "?"
        raise ConfigInvalide([f"{nom}:{ligne}: (file): not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigInvalide([f"{nom}:1: (file): expected a mapping with territoires and regles"])
    try:
        cfg = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalide(_problemes_pydantic(exc, root, nom)) from None
    refs = _references(cfg)
    if refs:
        raise ConfigInvalide([f"{nom}:{_ligne(root, p)}: {'.'.join(map(str, p))}: {m}" for p, m in refs])
    version = cfg.version or "sha256:" + hashlib.sha256(texte.encode()).hexdigest()[:12]
    return Moteur.compiler(cfg, version, nom)


def charger(path: Path | str | None = None) -> Moteur:
    p = Path(path) if path else fichier_par_defaut()
    try:
        texte = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalide([f"{p}:0: (file): cannot be read: {exc.strerror}"]) from None
    return charger_texte(texte, str(p))


_DEFAUT: Moteur | None = None


def moteur_par_defaut() -> Moteur:
    global _DEFAUT
    if _DEFAUT is None:
        _DEFAUT = charger()
    return _DEFAUT


# -- compiled form --------------------------------------------------------------------------


@dataclass(frozen=True)
class Moteur:
    """A configuration compiled for routing: lookups are dicts, rules are predicate tuples."""

    config: RoutingConfig
    version: str
    nom: str
    regles: tuple[Any, ...]  # triage.RegleCompilee, compiled by triage.compiler
    equipes: dict[str, Equipe]
    departement_de_equipe: dict[str, str]
    par_commune: dict[str, str]
    par_code_postal: dict[str, str]
    par_prefixe: tuple[tuple[str, str], ...]  # (prefix, team), longest first
    assistants: dict[str, tuple[str, Assistant]] = field(default_factory=dict)

    @classmethod
    def compiler(cls, cfg: RoutingConfig, version: str, nom: str = "routing.yaml") -> Moteur:
        from aiguillage.routing.triage import compiler as compiler_regles

        equipes, dep_de, communes, cps, prefixes, assistants = {}, {}, {}, {}, [], {}
        for dep, terr in cfg.territoires.items():
            for eq in terr.equipes:
                equipes[eq.id] = eq
                dep_de[eq.id] = dep
                communes.update({c.upper(): eq.id for c in eq.communes})
                for cp in eq.codes_postaux:
                    if cp.endswith("*"):
                        prefixes.append((cp[:-1], eq.id))
                    else:
                        cps[cp] = eq.id
                assistants.update({a.id: (eq.id, a) for a in eq.assistants})
        prefixes.sort(key=lambda p: -len(p[0]))
        return cls(
            config=cfg,
            version=version,
            nom=nom,
            regles=compiler_regles(cfg.regles),
            equipes=equipes,
            departement_de_equipe=dep_de,
            par_commune=communes,
            par_code_postal=cps,
            par_prefixe=tuple(prefixes),
            assistants=assistants,
        )
