"""The HTTP surface of the hub (``aiguillage gateway``), one module per resource.

- :mod:`.app`: the process's FastAPI app, which assembles the routers below;
- :mod:`.signalements`: the partner gateway, ``POST /v1/signalements/{source}``;
- :mod:`.suivis`: ``POST /v1/suivis``, the caseworker side's events;
- :mod:`.files`: the read side, ``GET /v1/files`` (the queues, from SQL);
- :mod:`.tableau_de_bord`: the dashboard and its figures;
- :mod:`.fhir`: the SPST's FHIR loop closure (``/fhir/metadata``, ``/fhir/Task``);
- :mod:`.charges`: caseloads and reassignments (``/v1/charges``, ``/v1/reaffectations``);
- :mod:`.moi`: ``/v1/moi``, who the caller is and their rights;
- :mod:`.limites`: the body limit and the rate limit per partner token (middlewares);
- :mod:`.health`: ``/healthz``, ``/readyz``, ``/metrics``.

Each route names the right it needs (:mod:`aiguillage.auth`).
"""
