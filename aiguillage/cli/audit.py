"""``aiguillage audit``: the audit trail as its sink wrote it in SQL, with filters; and the
records the CLI's own changes append (``dlq replay``, ``tokens add|rotate|revoke``).

A command has no OIDC token: its records name the operating-system account (``cli:<user>``)
and the role ``operateur``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from aiguillage.auth.audit import Action, Journal, enregistrement, operateur
from aiguillage.config import Settings, read_settings

console = Console(stderr=True)
ACTIONS = ", ".join(a.value for a in Action)


def noter(settings: Settings, action: Action, signalements: Iterable[str] = (), objet: str | None = None) -> bool:
    """Append one record for a change made by this command. False (and a warning) when no broker
    is configured; an error if one is and it refuses: the caller decides what that undoes."""
    from aiguillage.kafka import Publieur

    if not settings.broker:
        console.print(f"[yellow]warning: no broker (AIGUILLAGE_BROKER, or a running up): the {action.value} "
                      "is not in the audit trail[/]")
        return False
    record = enregistrement(operateur(), "operateur", action, signalements, objet)

    async def main() -> None:
        publieur = Publieur(settings.bootstrap_servers())
        try:
            await Journal(publieur).ecrire(record)
        finally:
            await publieur.close()

    asyncio.run(main())
    return True


def _quand(valeur: str) -> datetime:
    try:
        d = datetime.fromisoformat(valeur)
    except ValueError:
        raise typer.BadParameter(f"{valeur!r}: expected a date or time, e.g. 2026-12-01 or 2026-12-01T08:00") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def audit(
    qui: str = typer.Option(None, help="Only this subject (the token's sub, or cli:<user>)."),
    action: str = typer.Option(None, help=f"Only this action: {ACTIONS}."),
    depuis: str = typer.Option(None, help="From this date or time on (ISO 8601; UTC unless it says)."),
    signalement: str = typer.Option(None, help="Only the accesses to this signalement id."),
    limit: int = typer.Option(200, help="The latest N rows."),
) -> None:
    """List the audit trail: who read which personal rows, who changed what, newest last.
    Ids and codes only: the trail never holds a NIR or free text.

    Example:  aiguillage audit --action suivi --depuis 2026-12-01
    """
    from sinks import db

    if action is not None and action not in {a.value for a in Action}:
        raise typer.BadParameter(f"unknown action {action!r}")
    settings = read_settings()
    t = db.audit
    q = select(t).order_by(t.c.at.desc()).limit(limit)
    if qui:
        q = q.where(t.c.qui == qui)
    if action:
        q = q.where(t.c.action == action)
    if depuis:
        q = q.where(t.c.at >= _quand(depuis))
    if signalement:
        q = q.where(t.c.signalements.like(f"%{signalement}%"))
    engine = db.make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(q).mappings())[::-1]
    finally:
        engine.dispose()
    table = Table("at", "qui", "role", "action", "objet", "signalements", title=f"{len(rows)} access(es)")
    for r in rows:
        ids = r["signalements"].split()
        table.add_row(r["at"].isoformat(timespec="seconds"), r["qui"], r["role"], r["action"], r["equipe"] or "",
                      ids[0] + (f" (+{len(ids) - 1})" if len(ids) > 1 else "") if ids else "")
    Console(width=200).print(table)
