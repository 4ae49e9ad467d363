"""Hot reload: the routing file is re-read when it changes; a broken one is refused.

The worker polls :meth:`ConfigCourante.verifier` from a timer (a stat per poll).
A file that fails to load is logged with its errors and the previous configuration
stays in force; the same broken content is not reported again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiguillage.routing.config_file import ConfigInvalide, Moteur, charger, fichier_par_defaut

log = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ConfigCourante:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else fichier_par_defaut()
        self._vu = _signature(self.path)
        self.moteur: Moteur = charger(self.path)  # at start-up a broken file is fatal: nothing to keep
        self.derniere_erreur: ConfigInvalide | None = None

    def verifier(self) -> bool:
        """Reload if the file changed; True when a new configuration is now in force."""
        sig = _signature(self.path)
        if sig == self._vu:
            return False
        self._vu = sig
        try:
            moteur = charger(self.path)
        except ConfigInvalide as exc:
            self.derniere_erreur = exc
            log.error("routing configuration refused, %s stays in force: %s", self.moteur.version, exc)
            return False
        if moteur.version == self.moteur.version:
            return False
        log.info("routing configuration %s replaces %s", moteur.version, self.moteur.version)
        self.moteur, self.derniere_erreur = moteur, None
        return True
