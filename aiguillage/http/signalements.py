"""The partner gateway: ``POST /v1/signalements/{source}`` in the partner's native format.

202 with the ``signalement_id`` only once Kafka acknowledged the write; 4xx with
a JSON body naming each wrong field otherwise (and the record in the DLQ);
503 with ``Retry-After`` when the broker does not answer, never 202.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from aiguillage import metrics, topics, tracing
from aiguillage.config import Settings
from aiguillage.dlq import Rejet, dead_letter
from aiguillage.domain import Signalement, Source
from aiguillage.kafka import BrokerIndisponible, Publieur
from connectors.jetons import Authentification
from connectors.registry import CONNECTORS

log = logging.getLogger(__name__)


def _error(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def _indisponible(exc: BrokerIndisponible) -> JSONResponse:
    resp = _error(503, "broker-indisponible", f"{exc}; nothing was accepted, retry later")
    resp.headers["Retry-After"] = "5"
    return resp


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def router(settings: Settings, publieur: Publieur) -> APIRouter:
    api = APIRouter()
    cle_pseudonyme = settings.require_pseudonym_key()
    cle_dlq = settings.require_dlq_key()
    auth = Authentification(settings.tokens_path())

    async def rejeter(source: Source, rejet: Rejet, body: bytes, content_type: str | None) -> None:
        log.info("refused a %s record: %s%s", source.value, rejet.code,
                 f" ({', '.join(f.get('field', '?') for f in rejet.fields)})" if rejet.fields else "")
        dl = dead_letter(cle_dlq, source=source.value, stage="gateway", rejet=rejet, payload=body, content_type=content_type)
        try:
            await publieur.send(topics.REJETES, "DeadLetter", dl)
            metrics.DLQ.labels(source.value, "gateway", rejet.code).inc()
        except BrokerIndisponible:
            # The partner gets the 4xx and still holds the record: nothing is lost.
            log.warning("could not dead-letter a rejected %s record: broker unavailable", source.value)

    @api.post("/v1/signalements/{source}", status_code=202)
    async def recevoir(source: str, request: Request) -> JSONResponse:
        try:
            src = Source(source)
        except ValueError:
            return _error(404, "source-inconnue", f"unknown source {source!r}; expected one of {[s.value for s in Source]}")
        refus = auth.verifier(request.headers.get("authorization"), src)
        if refus is not None:
            headers = {"WWW-Authenticate": "Bearer"} if refus.status == 401 else None
            return JSONResponse(refus.as_json(), status_code=refus.status, headers=headers)
        connector = CONNECTORS.get(src)
        if connector is None:
            return _error(404, "source-sans-connecteur", f"no HTTP connector for {src.value} yet")
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type not in connector.media_types:
            return _error(415, "type-de-contenu", f"{src.value} sends {' or '.join(connector.media_types)}, not {content_type or 'nothing'}")
        body = await _read_body(request, settings.max_body_bytes)
        if body is None:
            return _error(413, "corps-trop-grand", f"the body exceeds {settings.max_body_bytes} bytes")
        results = list(connector.lire(body, datetime.now(UTC), cle_pseudonyme))
        publies: list[str] = []
        rejets: list[Rejet] = []
        envois: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]] = []
        for item in results:
            if isinstance(item, Signalement):
                with tracing.etape("gateway", source=src.value, signalement_id=item.signalement_id):
                    envois.append((topics.entrants(src), publieur.codec.encode("Signalement", item.to_avro()),
                                   item.cle(), tracing.entetes()))
                publies.append(item.signalement_id)
            else:
                rejets.append(item)
        try:
            # The batch's signalements together: one wait for the broker (and one outbox
            # transaction) per request, not one per row (2,000 rows took ~25 s on `up`).
            await publieur.send_many(envois, durable=True)
            metrics.RECUS.labels(src.value, "http").inc(len(envois))
            for rejet in rejets:
                metrics.REJETES.labels(src.value, "gateway", rejet.code).inc()
                await rejeter(src, rejet, rejet.brut or body, content_type)
        except BrokerIndisponible as exc:
            return _indisponible(exc)
        if len(results) == 1:
            if rejets:
                corps, media_type = connector.corps_du_refus(rejets[0])
                return JSONResponse(corps, status_code=422, media_type=media_type)
            return JSONResponse({"signalement_id": publies[0]}, status_code=202)
        status = 202 if publies else 422
        return JSONResponse(
            {"publies": publies, "rejetes": [connector.corps_du_refus(r)[0] for r in rejets]}, status_code=status
        )

    return api
