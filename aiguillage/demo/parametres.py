"""Every distribution the simulator draws from, with the seed figure it comes from.

Seeds (``/work/shared/seeds/`` beside DESIGN.md):
  [AV]  portrait-2023-midi-pyrenees.txt, the Aveyron page (2023)
  [LR]  bilan-2023-languedoc-roussillon.txt
  [NAT] bilan-2022-national.txt
  [MP]  portrait-2023-midi-pyrenees.txt, regional figures
Where a seed is silent the value is marked ASSUMPTION and chosen to be plausible.
A weights mapping need not sum to 1: it is normalised when drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def normaliser(poids: dict[str, float]) -> dict[str, float]:
    total = sum(poids.values())
    return {k: v / total for k, v in poids.items()}


@dataclass(frozen=True)
class Parametres:
    # [AV] "En 2023, 1 618 assurés suivis"; 90% of signalements lead to an
    # accompaniment (ASSUMPTION), hence ~1,800 signalements a year.
    assures_par_an: int = 1618
    taux_prise_en_charge: float = 0.90  # ASSUMPTION: the rest are refused or cancelled

    # [LR] "La part des signalements du service médical ... reste prépondérante";
    # the internal/external split is an ASSUMPTION; among external ones [LR] "69 % des
    # sollicitations provenant des SPST"; Cap emploi vs MDPH split of the other 31%: ASSUMPTION.
    sources: dict[str, float] = field(default_factory=lambda: {
        "service-medical": 0.55, "cpam": 0.20,
        "spst": 0.25 * 0.69, "cap-emploi": 0.25 * 0.17, "mdph": 0.25 * 0.14,
    })
    # [AV] "Axe employabilité : 59 %, Axe santé : 41 %" (beneficiaries).
    axes: dict[str, float] = field(default_factory=lambda: {"PDP": 0.59, "SPS": 0.41})
    # [LR] "une majorité de femmes (58%)".
    sexes: dict[str, float] = field(default_factory=lambda: {"F": 0.58, "M": 0.42})
    # [LR] "49 % des assurés sont âgés de 46 à 59 ans, 28 % de 26 à 45 ans" and
    # "16% ont 60 ans et plus"; <26 is the remaining 7%.
    tranches_age: dict[str, float] = field(default_factory=lambda: {
        "<26": 0.07, "26-45": 0.28, "46-59": 0.49, "60+": 0.16,
    })
    # [LR] "64 % ... risque maladie, 11 % de l'invalidité, 13 % du risque AT/MP"
    # (88% of the total; the schema knows these three only, so they are normalised).
    risques: dict[str, float] = field(default_factory=lambda: {
        "maladie": 0.64, "at-mp": 0.13, "invalidite": 0.11,
    })
    # [AV] "4 368 entretiens" for 1 618 assurés = 2.70 per assuré; [AV] entretiens by
    # axe "employabilité 64 %, santé 36 %" against beneficiaries 59/41 gives
    # 2.70 * 64/59 = 2.93 per PDP assuré and 2.70 * 36/41 = 2.37 per SPS assuré.
    entretiens_par_assure: dict[str, float] = field(default_factory=lambda: {"PDP": 2.93, "SPS": 2.37})
    # [AV] "2 339 entretiens de visu (dans les lieux d'accueil, visites à domicile),
    # 2 017 entretiens téléphoniques"; the home-visit share of de visu (10%): ASSUMPTION.
    modes_entretien: dict[str, float] = field(default_factory=lambda: {
        "de-visu": 2339 * 0.9, "visite-domicile": 2339 * 0.1, "telephone": 2017,
    })
    # [NAT] "110 700 préconisations" for "170 000 assurés" PDP = 0.65 per PDP assuré;
    # types 33 / 27 / 5 / 5 / 7 %, the other 23% "autre".
    preconisations_par_assure_pdp: float = 110_700 / 170_000
    preconisations: dict[str, float] = field(default_factory=lambda: {
        "visite-pre-reprise": 0.33, "rqth": 0.27, "bilan-competences": 0.05,
        "cpf": 0.05, "mise-en-relation": 0.07, "autre": 0.23,
    })
    # [LR] "46% des assurés suivis ont pu être maintenus dans l'employabilité dont 44%
    # dans leur poste ou un autre emploi" ([NAT] 49%); poste vs autre emploi (30/14) and
    # the non-maintained outcomes: ASSUMPTION.
    issues_pdp: dict[str, float] = field(default_factory=lambda: {
        "maintien-poste": 0.30, "maintien-autre-emploi": 0.14, "maintien-marche-travail": 0.02,
        "sortie-emploi": 0.34, "sans-suite": 0.12, "autre": 0.08,
    })
    issues_sps: dict[str, float] = field(default_factory=lambda: {"autre": 0.85, "sans-suite": 0.15})  # ASSUMPTION
    # [LR] "La durée moyenne d'accompagnement se situe entre 6 et 13 mois" (PDP);
    # [MP] "3 mois : durée moyenne d'un accompagnement individuel" (SPS): 2 to 4 months.
    duree_jours: dict[str, tuple[int, int]] = field(default_factory=lambda: {"PDP": (183, 396), "SPS": (61, 122)})
    # First contact: the deadline is 10 days; mean delay 6 days: ASSUMPTION.
    delai_premier_contact_moyen_jours: float = 6.0
    # [AV] "1 action collective ... au cours de 7 séances"; the zoom: "8 assurées".
    actions_collectives_par_an: int = 1
    seances_par_action: int = 7
    participants_par_action: int = 8
    # [AV] the Aveyron (12): communes of Rodez, Millau, Villefranche-de-Rouergue, Decazeville.
    communes: dict[str, float] = field(default_factory=lambda: {
        "12202": 0.40, "12145": 0.30, "12300": 0.18, "12089": 0.12,
    })
    situations: dict[str, float] = field(default_factory=lambda: {  # [NAT] "78 % ... ont un emploi"
        "salarie": 0.70, "fonctionnaire": 0.05, "independant": 0.03,
        "demandeur-emploi": 0.12, "sans-activite": 0.06, "autre": 0.04,
    })
