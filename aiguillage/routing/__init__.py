"""The routing engine: YAML configuration, triage rules, choice of team and caseworker,
ageing priorities and the life cycle of a signalement. Pure functions only: the Faust
agents in ``streams/`` are thin adapters around them.
"""

from aiguillage.routing.config_file import (
    ConfigInvalide,
    Moteur,
    charger,
    charger_texte,
    moteur_par_defaut,
)

__all__ = ["ConfigInvalide", "Moteur", "charger", "charger_texte", "moteur_par_defaut"]
