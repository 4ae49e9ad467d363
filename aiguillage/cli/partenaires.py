"""Partner-side commands: ``ingest`` (batch files), ``dlq list|replay``, ``tokens add|rotate|list|revoke``.

Registered on the main Typer app by :func:`register` (one line in ``aiguillage/cli/main.py``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aiguillage.config import MissingSecret, Settings, read_settings
from aiguillage.domain import Source

console = Console(stderr=True)
dlq_app = typer.Typer(help="The dead-letter topic signalements.rejetes: reasons, replay.", no_args_is_help=True)
tokens_app = typer.Typer(help="Partner bearer tokens (stored hashed in AIGUILLAGE_TOKENS_FILE).", no_args_is_help=True)

EXIT_OK, EXIT_REJETS, EXIT_USAGE, EXIT_FICHIER, EXIT_BROKER = 0, 1, 2, 3, 4


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _bootstrap(settings: Settings) -> str:
    if not settings.broker:
        _fail("AIGUILLAGE_BROKER is not set (e.g. kafka://127.0.0.1:9092)")
    return settings.bootstrap_servers()


def _source(value: str) -> Source:
    try:
        return Source(value)
    except ValueError:
        _fail(f"unknown source {value!r}; expected one of {[s.value for s in Source]}")
        raise


def ingest(
    source: str = typer.Argument(..., help="The partner: service-medical (or any source, one document per file)."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The file to ingest."),  # noqa: B008
    force: bool = typer.Option(False, "--force", help="Ignore the checkpoint and send every line again (the stream still deduplicates)."),
    window: int = typer.Option(5000, help="Sends in flight before waiting for their acks."),
) -> None:
    """Ingest a partner's batch file: stream it line by line, publish each good row to
    signalements.entrants.SOURCE, dead-letter each bad row with its line number.

    A rerun of the same file (same content) publishes nothing twice: lines already
    acknowledged are skipped (checkpoint in AIGUILLAGE_DATA_DIR/ingest/); a run that
    stopped half-way resumes after the last acknowledged line.

    Exit status:
    0 every row published;
    1 some rows rejected, now or by an earlier run of this file (the others are published);
    2 usage error (source, file, secrets);
    3 the whole file refused (header, encoding): nothing published;
    4 the broker stopped answering: rerun to resume.

    Example:  aiguillage ingest service-medical arrets-2026-11-23.csv
    """
    from aiguillage.kafka import BrokerIndisponible
    from connectors.lot import DETAILS_MAX, Ingestion

    src = _source(source)
    settings = read_settings()
    bootstrap = _bootstrap(settings)
    try:
        job = Ingestion(src, file, bootstrap, settings.require_pseudonym_key(), settings.require_dlq_key(),
                        settings.data_dir / "ingest", fenetre=window, force=force)
    except MissingSecret as exc:
        _fail(str(exc))
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    debut = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"ingest {file.name}", total=file.stat().st_size)
        try:
            summary = asyncio.run(job.run(lambda n: progress.advance(task, n)))
        except BrokerIndisponible as exc:
            _fail(f"{exc}; rerun the same command to resume after the last acknowledged line", EXIT_BROKER)
    duree = time.monotonic() - debut
    typer.echo(
        f"{file.name}: read {summary.lus}, published {summary.publies}, rejected {summary.rejetes}"
        + (f", skipped {summary.deja_traites} already sent by an earlier run" if summary.deja_traites else "")
        + f" in {duree:.1f} s ({summary.lus / duree if duree else 0:,.0f} rows/s)"
    )
    for ligne, code, reason in summary.details:
        typer.echo(f"  line {ligne}: {code}: {reason}")
    if summary.rejetes > DETAILS_MAX:
        typer.echo(f"  … and {summary.rejetes - DETAILS_MAX} more: aiguillage dlq list --source {src.value} --stage batch")
    if summary.rejetes_avant:
        typer.echo(f"  {summary.rejetes_avant} line(s) of this file were rejected by an earlier run (in the DLQ)")
    if summary.fichier_refuse:
        raise typer.Exit(EXIT_FICHIER)
    raise typer.Exit(EXIT_REJETS if summary.rejetes or summary.rejetes_avant else EXIT_OK)


@dlq_app.command("list")
def dlq_list(
    source: str = typer.Option(None, help="Only this source."),
    stage: str = typer.Option(None, help="Only this stage: gateway, batch, stream, sink-…"),
    code: str = typer.Option(None, help="Only this error code, e.g. nir-cle-invalide."),
    limit: int = typer.Option(50, help="Dead letters listed one by one (the counts cover all)."),
) -> None:
    """List dead letters: counts per source/stage/code, then the latest ones with their reasons.
    Payloads stay encrypted: reasons never hold a value, only the field and what was expected.

    Example:  aiguillage dlq list --source service-medical --stage batch
    """
    from aiguillage import rejeu

    rejets = rejeu.filtrer(rejeu.lire(_bootstrap(read_settings())), source, stage, code)
    counts = Table("source", "stage", "code", "count", title=f"{len(rejets)} dead letter(s)")
    for (src, stg, cd), n in sorted(rejeu.compter(rejets).items()):
        counts.add_row(src, stg, cd, str(n))
    out = Console()
    out.print(counts)
    # One plain line per dead letter: readable, and grep-able in a script.
    for d in sorted(rejets, key=lambda d: d["rejete_le"])[-limit:] if limit else []:
        ligne = "" if d["ligne"] is None else f" line {d['ligne']}"
        typer.echo(f"{d['rejete_le'].isoformat(timespec='seconds')}  {d['source']}/{d['stage']}{ligne}  "
                   f"{d['error_code']}: {d['reason']}")


@dlq_app.command("replay")
def dlq_replay(
    source: str = typer.Option(None, help="Only this source."),
    stage: str = typer.Option(None, help="Only this stage: gateway, batch, stream, equipes, cycle, agregats."),
    code: str = typer.Option(None, help="Only this error code."),
) -> None:
    """Decrypt dead letters, run them again through their connector (gateway, batch) or the
    stream's validation (stream), re-inject what now passes, and say what still fails. A record
    of the worker's inner stages (equipes, cycle, agregats) goes back to the topic it came from.
    Safe to repeat: ids are deterministic, the stream routes an id once, the inner stages are
    idempotent.

    Exit status: 0 everything selected was re-injected; 1 some still fail; 2 usage error.

    Example:  aiguillage dlq replay --source mdph --code champ-invalide
    """
    from aiguillage import rejeu
    from aiguillage.kafka import Publieur

    settings = read_settings()
    bootstrap = _bootstrap(settings)
    try:
        cle_dlq, cle_pseudo = settings.require_dlq_key(), settings.require_pseudonym_key()
    except MissingSecret as exc:
        _fail(str(exc))
    rejets = rejeu.filtrer(rejeu.lire(bootstrap), source, stage, code)

    async def main() -> rejeu.Rejeu:
        publieur = Publieur(bootstrap)
        try:
            return await rejeu.rejouer(rejets, publieur, cle_dlq, cle_pseudo, settings.worker_id)
        finally:
            await publieur.close()

    bilan = asyncio.run(main())
    from aiguillage.auth.audit import Action
    from aiguillage.cli.audit import noter

    noter(settings, Action.DLQ_REJEU, bilan.reinjectes, source)
    typer.echo(f"{len(rejets)} dead letter(s) selected: re-injected {len(bilan.reinjectes)} signalement(s) and "
               f"{bilan.internes} inner record(s), {len(bilan.echecs)} still failing, "
               f"{len(bilan.ignores)} not replayable here (sink stages)")
    for d, r in bilan.echecs:
        ligne = f" line {r.ligne}" if r.ligne is not None else ""
        typer.echo(f"  still failing: {d['source']}/{d['stage']}{ligne}: {r.code}: {r.reason}")
    raise typer.Exit(EXIT_REJETS if bilan.echecs else EXIT_OK)


def _tokens_path() -> Path:
    return read_settings().tokens_path()


def _emettre(source: str, remplacer: bool) -> None:
    from aiguillage.auth.audit import Action
    from aiguillage.cli.audit import noter
    from connectors import jetons

    settings = read_settings()
    path = settings.tokens_path()
    jeton, entree = jetons.emettre(path, _source(source), remplacer=remplacer)
    try:
        noter(settings, Action.JETON_AJOUT, (), entree.id)
    except Exception as exc:  # noqa: BLE001 - no trace, no token: undo it
        jetons.revoquer(path, entree.id)
        _fail(f"the audit trail could not be written ({type(exc).__name__}): no token was issued")
    console.print(f"token {entree.id} for {entree.source} written (hashed) to {path}; "
                  "it is shown once, give it to the partner now:")
    typer.echo(jeton)


@tokens_app.command("add")
def tokens_add(source: str = typer.Argument(..., help="The partner the token is bound to.")) -> None:
    """Issue one more token for SOURCE (the older ones keep working: rotate without downtime,
    then revoke). Prints the token once on stdout; only its salted hash is kept.

    Example:  aiguillage tokens add spst
    """
    _emettre(source, remplacer=False)


@tokens_app.command("rotate")
def tokens_rotate(source: str = typer.Argument(..., help="The partner the token is bound to.")) -> None:
    """Issue a new token for SOURCE and revoke all its older ones at once. Prints it once.

    Example:  AIGUILLAGE_TOKENS_FILE=/etc/aiguillage/tokens.json aiguillage tokens rotate cpam
    """
    _emettre(source, remplacer=True)


@tokens_app.command("list")
def tokens_list() -> None:
    """List token ids, sources and dates (never a token or a hash).

    Example:  aiguillage tokens list
    """
    from connectors import jetons

    for e in jetons.lire(_tokens_path()):
        typer.echo(f"{e.id}\t{e.source}\t{e.cree_le}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The id shown by 'tokens list'.")) -> None:
    """Revoke one token by its id; the gateway stops accepting it at once.

    Example:  aiguillage tokens revoke cpam-1a2b3c4d
    """
    from aiguillage.auth.audit import Action
    from aiguillage.cli.audit import noter
    from connectors import jetons

    settings = read_settings()
    if not any(e.id == token_id for e in jetons.lire(settings.tokens_path())):
        _fail(f"no token with id {token_id!r}")
    try:
        noter(settings, Action.JETON_REVOCATION, (), token_id)
    except Exception as exc:  # noqa: BLE001
        _fail(f"the audit trail could not be written ({type(exc).__name__}): nothing was revoked")
    jetons.revoquer(settings.tokens_path(), token_id)
    console.print(f"revoked {token_id}")


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(tokens_app, name="tokens")
