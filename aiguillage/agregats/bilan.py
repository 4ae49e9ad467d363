"""The yearly bilan, written from the year's figures with the sections of the seeds.

Pure: takes the ``agregats`` rows of one year (and territory) and gives a
:class:`Bilan`, rendered as Markdown or HTML. Masked figures print as « s »
(secret statistique) and are left out of percentages.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES = {"service-medical": "Service médical", "cpam": "CPAM / CCSS", "spst": "Services de prévention et de santé au travail (SPST)",
           "cap-emploi": "Cap emploi", "mdph": "MDPH"}
EXTERNES = ("spst", "cap-emploi", "mdph")
SEXES = {"F": "Femmes", "M": "Hommes"}
TRANCHES = {"<26": "Moins de 26 ans", "26-45": "26 à 45 ans", "46-59": "46 à 59 ans", "60+": "60 ans et plus", "inconnue": "Âge inconnu"}
RISQUES = {"maladie": "Maladie", "at-mp": "Accident du travail / maladie professionnelle", "invalidite": "Invalidité",
           "non-renseigne": "Non renseigné"}
MODES = {"de-visu": "De visu (lieux d’accueil)", "visite-domicile": "Visite à domicile", "telephone": "Téléphone"}
PRECOS = {"visite-pre-reprise": "Visite de pré-reprise auprès de la médecine du travail", "rqth": "Demande de RQTH",
          "bilan-competences": "Bilan de compétences", "cpf": "Activation du compte personnel de formation",
          "mise-en-relation": "Mise en relation avec les partenaires de l’insertion", "autre": "Autres préconisations"}
ISSUES = {"maintien-poste": "Maintien dans le poste", "maintien-autre-emploi": "Maintien dans un autre emploi",
          "maintien-marche-travail": "Maintien sur le marché du travail", "sortie-emploi": "Sortie de l’emploi",
          "sans-suite": "Sans suite", "autre": "Autre issue", "refus": "Refus de l’assuré", "annulation": "Annulation"}
MAINTIENS = ("maintien-poste", "maintien-autre-emploi", "maintien-marche-travail")


@dataclass
class Section:
    titre: str
    phrases: list[str] = field(default_factory=list)
    tableaux: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)


@dataclass
class Bilan:
    annee: int
    territoire: str | None
    sections: list[Section]
    mesures: dict[str, float]  # the proportions, for checks and for machines

    @property
    def titre(self) -> str:
        lieu = f"département {self.territoire}" if self.territoire else "ensemble des territoires"
        return f"Bilan d’activité {self.annee} du service social — {lieu}"

    def markdown(self) -> str:
        out = [f"# {self.titre}", ""]
        for s in self.sections:
            out += [f"## {s.titre}", ""]
            out += [f"- {p}" for p in s.phrases]
            for entetes, lignes in s.tableaux:
                out += ["", "| " + " | ".join(entetes) + " |", "|" + "---|" * len(entetes)]
                out += ["| " + " | ".join(ligne) + " |" for ligne in lignes]
            out.append("")
        out.append("_Chiffres tirés des agrégats du hub Aiguillage ; « s » : effectif inférieur au seuil de confidentialité._")
        return "\n".join(out) + "\n"

    def html(self) -> str:
        e = html.escape
        out = ['<!doctype html><html lang="fr"><head><meta charset="utf-8">', f"<title>{e(self.titre)}</title>",
               ("<style>body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:60rem;margin:2rem auto;color:#1b1f23}"
               "h1,h2{color:#1f4e79}table{border-collapse:collapse;margin:.5rem 0 1rem}"
               "td,th{border-bottom:1px solid #d8dee4;padding:.2rem .6rem;text-align:right}"
               "td:first-child,th:first-child{text-align:left}</style></head><body>"), f"<h1>{e(self.titre)}</h1>"]
        for s in self.sections:
            out.append(f"<h2>{e(s.titre)}</h2>")
            if s.phrases:
                out.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in s.phrases) + "</ul>")
            for entetes, lignes in s.tableaux:
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in entetes) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in ligne) + "</tr>" for ligne in lignes]
                out.append("</table>")
        out.append("<p><small>Chiffres tirés des agrégats du hub Aiguillage ; « s » : effectif inférieur au seuil de confidentialité.</small></p></body></html>")
        return "\n".join(out) + "\n"


def _n(x: float | None) -> str:
    if x is None:
        return "s"
    return f"{x:,.0f}".replace(",", "\u202f") if float(x).is_integer() else f"{x:.1f}".replace(".", ",")


def _pct(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{100 * a / b:.0f} %"


class _Figures:
    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows: dict[tuple[str, frozenset[tuple[str, str]]], Mapping[str, Any]] = {}
        for r in rows:
            dims = {k: v for k, v in r["dimensions"].items() if k != "departement"}
            self.rows[(r["indicateur"], frozenset(dims.items()))] = r

    def get(self, indicateur: str, **dims: str) -> float | None:
        r = self.rows.get((indicateur, frozenset(dims.items())))
        return None if r is None or r["masque"] else r["valeur"]

    def n(self, indicateur: str, **dims: str) -> float:
        return self.get(indicateur, **dims) or 0.0

    def par(self, indicateur: str, dim: str, **fixes: str) -> dict[str, float | None]:
        out = {}
        for (ind, dims), r in self.rows.items():
            d = dict(dims)
            if ind == indicateur and dim in d and {k: v for k, v in d.items() if k != dim} == fixes:
                out[d[dim]] = None if r["masque"] else r["valeur"]
        return out


def _repartition(titre: str, valeurs: Mapping[str, float | None], libelles: Mapping[str, str],
                 mesures: dict[str, float], prefixe: str) -> tuple[list[str], list[list[str]]]:
    total = sum(v for v in valeurs.values() if v)
    ordre = [k for k in libelles if k in valeurs] + sorted(k for k in valeurs if k not in libelles)
    lignes = []
    for k in ordre:
        lignes.append([libelles.get(k, k), _n(valeurs[k]), _pct(valeurs[k], total)])
        v = valeurs[k]
        if v is not None and total:
            mesures[f"{prefixe}.{k}"] = v / total
    return [titre, "nombre", "part"], lignes


def bilan(rows: Iterable[Mapping[str, Any]], annee: int, territoire: str | None = None) -> Bilan:
    f = _Figures(rows)
    m: dict[str, float] = {}
    sig, assures, ent = f.n("signalements"), f.n("assures-accompagnes"), f.n("entretiens")
    pdp, sps = f.n("assures-accompagnes", axe="PDP"), f.n("assures-accompagnes", axe="SPS")
    if assures:
        m["axes.PDP"], m["axes.SPS"] = pdp / assures, sps / assures
        m["entretiens_par_assure"] = ent / assures
    p50, p90 = f.get("delai-premier-contact-p50"), f.get("delai-premier-contact-p90")
    cles = Section("Chiffres clés", [
        f"{_n(sig)} signalements reçus des partenaires.",
        f"{_n(assures)} assurés accompagnés individuellement, dont {_pct(pdp, assures)} pour prévenir la désinsertion professionnelle (PDP) et {_pct(sps, assures)} pour sécuriser leur parcours en santé (SPS).",
        f"{_n(ent)} entretiens réalisés par les assistant(e)s de service social, soit {_n(round(ent / assures, 1) if assures else None)} par assuré accompagné.",
        (f"Premier contact : la moitié des assurés en moins de {_n(p50)} jours, 9 sur 10 en moins de {_n(p90)} jours ; "
        f"{_n(f.get('premiers-contacts-hors-delai'))} premiers contacts après l’échéance ({_pct(f.get('premiers-contacts-hors-delai'), f.get('premiers-contacts'))})."),
        f"Intervention sociale collective : {_n(f.n('actions-collectives'))} action(s) collective(s), {_n(f.n('seances-collectives'))} séances, {_n(f.n('participants-collectifs'))} participants.",
    ])

    def axe_section(axe: str, titre: str) -> Section:
        n_ax, e_ax = f.n("assures-accompagnes", axe=axe), f.n("entretiens", axe=axe)
        duree = f.get("duree-accompagnement-moyenne", axe=axe)
        if duree is not None:
            m[f"duree_mois.{axe}"] = duree / 30.44
        s = Section(titre, [
            f"{_n(n_ax)} assurés accompagnés ({_pct(n_ax, assures)} des accompagnements).",
            f"{_n(e_ax)} entretiens réalisés ({_pct(e_ax, ent)} des entretiens).",
            f"Durée moyenne d’un accompagnement clôturé : {_n(round(duree / 30.44, 1) if duree is not None else None)} mois.",
        ])
        clos = f.par("clotures", "issue", axe=axe)
        total = sum(v for k, v in clos.items() if v and k not in ("refus", "annulation"))
        if axe == "PDP":
            maintenus = sum(clos.get(k) or 0 for k in MAINTIENS)
            if total:
                m["maintien_pdp"] = maintenus / total
            s.phrases.append(f"{_n(total)} parcours d’accompagnement finalisés, dont {_pct(maintenus, total)} d’assurés maintenus en emploi ou sur le marché du travail.")
            s.phrases.append(f"{_n(f.n('preconisations', axe='PDP'))} préconisations faites aux assurés accompagnés.")
        return s

    profil = Section("Profil des assurés", ["Assurés accompagnés dans l’année (première prise en charge)."])
    profil.tableaux.append(_repartition("Sexe", f.par("assures-accompagnes", "sexe"), SEXES, m, "sexes"))
    profil.tableaux.append(_repartition("Âge", f.par("assures-accompagnes", "tranche_age"), TRANCHES, m, "tranches_age"))
    profil.tableaux.append(_repartition("Risque", f.par("assures-accompagnes", "risque"), RISQUES, m, "risques"))
    femmes_pdp = f.get("assures-accompagnes", axe="PDP", sexe="F")
    profil.phrases.append(f"Parmi les bénéficiaires PDP : {_pct(femmes_pdp, pdp)} de femmes.")

    par_source = f.par("signalements", "source")
    sources = Section("Signalements reçus par source")
    sources.tableaux.append(_repartition("Partenaire", par_source, SOURCES, m, "sources"))
    externes = {k: v for k, v in par_source.items() if k in EXTERNES}
    tot_ext = sum(v for v in externes.values() if v)
    sources.phrases.append(f"{_n(tot_ext)} signalements de partenaires externes ({_pct(tot_ext, sum(v for v in par_source.values() if v))} du total).")
    sources.tableaux.append(_repartition("Partenaire externe", externes, SOURCES, m, "externes"))

    entretiens = Section("Entretiens", [f"{_n(ent)} entretiens, dont {_n(f.get('entretiens', axe='PDP'))} au titre de la PDP et {_n(f.get('entretiens', axe='SPS'))} au titre de la SPS."])
    entretiens.tableaux.append(_repartition("Mode d’entretien", f.par("entretiens", "mode"), MODES, m, "modes"))

    precos = Section("Préconisations", [f"{_n(f.n('preconisations'))} préconisations."])
    precos.tableaux.append(_repartition("Préconisation", f.par("preconisations", "preconisation"), PRECOS, m, "preconisations"))

    issues = Section("Issues des accompagnements")
    issues.tableaux.append(_repartition("Issue (tous axes)", f.par("clotures", "issue"), ISSUES, m, "issues"))
    issues.tableaux.append(_repartition("Issue (PDP)", f.par("clotures", "issue", axe="PDP"), ISSUES, m, "issues_pdp"))
    trois = f.par("clotures-3-entretiens", "issue", axe="PDP")
    t3 = sum(v for v in trois.values() if v)
    issues.phrases.append(f"Accompagnements PDP clôturés après au moins 3 entretiens : {_n(t3)}, dont {_pct(sum(trois.get(k) or 0 for k in MAINTIENS), t3)} maintenus en emploi ou sur le marché du travail.")

    sections = [cles, axe_section("PDP", "Prévenir la désinsertion professionnelle (PDP)"),
                axe_section("SPS", "Sécuriser les parcours en santé (SPS)"), profil, sources, entretiens, precos, issues]
    return Bilan(annee, territoire, sections, m)
