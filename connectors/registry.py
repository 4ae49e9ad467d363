"""Which connector serves which source. A sixth partner is one module plus one line here."""

from __future__ import annotations

from aiguillage.domain import Source
from connectors.base import Connector
from connectors.cap_emploi import CapEmploiConnector
from connectors.cpam import CpamConnector
from connectors.mdph import MdphConnector
from connectors.service_medical import ServiceMedicalConnector
from connectors.spst import SpstConnector

CONNECTORS: dict[Source, Connector] = {
    c.source: c
    for c in (ServiceMedicalConnector(), CpamConnector(), SpstConnector(), CapEmploiConnector(), MdphConnector())
}
