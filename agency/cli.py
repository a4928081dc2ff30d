"""The ``agency`` command: accounts, the service, the worker, the metadata load."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from pathlib import Path

from sqlalchemy import select

from agency.accounts import AccountError, create_account
from agency.config import SettingError, load_settings
from agency.models import Account
from agency.services import build_agency, settle_startup_heap

DEMO_LOGIN, DEMO_PREFIX, DEMO_EMAIL = "demo", "10.5555", "demo@example.org"


def _read_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("agency: give the password on standard input (one line)")
    return line.rstrip("\r\n")


def cmd_accounts_create(args) -> int:
    from agency.admin.accounts import create

    svc = build_agency(load_settings())
    password = _read_password()
    try:
        with svc.db.transaction() as session:
            registrant = create(session, svc.passwords, _operator(args), args.login, args.email, password,
                                args.prefix)
    except AccountError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"created account {registrant.login} (id {registrant.id}) with prefixes "
          f"{', '.join(sorted(registrant.prefixes)) or '(none)'}")
    return 0


def cmd_operators_create(args) -> int:
    """An RA staff account for the /staff/ console; the password is read from standard input."""
    from agency.admin.operators import create_operator

    svc = build_agency(load_settings())
    password = _read_password()
    try:
        with svc.db.transaction() as session:
            operator = create_operator(session, svc.passwords, args.name, password)
    except AccountError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"created operator {operator.name} (id {operator.id}): sign in at /staff/sign-in")
    return 0


def ensure_demo_account(svc) -> tuple[str, str, str]:
    """Create the demo account once; its password is kept in the data folder."""
    secret_file: Path = svc.settings.data_dir / "demo-password.txt"
    with svc.db.transaction() as session:
        exists = session.scalar(select(Account).where(Account.login == DEMO_LOGIN))
        if exists is None or not secret_file.exists():
            password = secrets.token_urlsafe(12)
            if exists is not None:
                exists.password_hash = svc.passwords.hash(password)
            else:
                create_account(session, svc.passwords, DEMO_LOGIN, DEMO_EMAIL, password, [DEMO_PREFIX])
            secret_file.write_text(password + "\n")
            secret_file.chmod(0o600)
    return DEMO_LOGIN, secret_file.read_text().strip(), DEMO_PREFIX


def cmd_serve(args) -> int:
    from agency.app import create_app
    from agency.web.server import make_server

    settings = load_settings(base_url=f"http://{args.host}:{args.port}")
    svc = build_agency(settings)
    if args.demo:
        login, password, prefix = ensure_demo_account(svc)
        print(f"demo account: login {login!r}, password {password!r}, prefix {prefix}")
        print(f"  try: curl -u {login}:{password} -H 'Content-Type: application/xml' "
              f"--data-binary @batch.xml 'http://{args.host}:{args.port}/v1/deposits?wait=10'")
    app = create_app(agency=svc, start_background=True)
    if settings.handle_port:
        handles = svc.start_handle_server()
        print(f"handle protocol on {settings.handle_host}:{handles.port} (TCP and UDP)", flush=True)
    print(f"agency serving on http://{args.host}:{args.port} (data {settings.data_dir.resolve()}, "
          f"batches {settings.batch_dir.resolve()})", flush=True)
    settle_startup_heap()
    try:
        # Bodies up to 32 MiB are buffered in memory and read in large pieces: waitress's defaults
        # (512 KiB, then a temp file written 8 KiB at a time) cost more than validating the batch.
        # The body limit and the HTTP Basic check happen in waitress's parser, before the body is read.
        make_server(app, settings.max_batch_bytes, host=args.host, port=args.port, threads=args.threads,
                    ident="agency", inbuf_overflow=32 * 1024 * 1024, recv_bytes=256 * 1024).run()
    finally:
        svc.stop_background()
    return 0


def cmd_worker(args) -> int:
    settings = load_settings()
    svc = build_agency(settings)
    if args.once:
        svc.worker.drain(timeout=args.timeout)
        return 0
    import signal
    import threading

    stop = threading.Event()
    # systemd and supervisors stop with SIGTERM: finish the slice (its chunks are committed), hand over.
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), svc.worker.wakeup.set()))
    svc.start_scheduler()  # runs its jobs only while elected (one scheduler across processes)
    settle_startup_heap()
    try:
        svc.worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        svc.stop_background()
    return 0


def cmd_query(args) -> int:
    """Answer a piped query file from the command line (an operator's check of the index)."""
    from agency.query.piped_format import QueryTextError, iter_query_lines

    svc = build_agency(load_settings())
    try:
        source = open(args.file, "rb") if args.file != "-" else sys.stdin.buffer
    except OSError as exc:
        print(f"agency: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        lines = list(iter_query_lines(source, svc.settings.query_max_lines, svc.settings.query_max_line_chars))
    except QueryTextError as exc:
        print(f"agency: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    for start in range(0, len(lines), svc.settings.chunk_records):
        sys.stdout.write(svc.queries.answer_now(lines[start:start + svc.settings.chunk_records]).text)
    return 0


def cmd_config(_args) -> int:
    """Every setting's effective value and its source; exit 1 when one is invalid."""
    from agency.config import describe_settings

    reports = describe_settings()  # (unknown AGENCY_ variables were warned about at start)
    for report in reports:
        print(f"{report.variable}={report.value}    ({report.source})\n    {report.doc}")
    errors = [report.error for report in reports if report.error]
    for error in errors:
        print(f"agency: {error}", file=sys.stderr)
    return 1 if errors else 0


def cmd_mail_send(_args) -> int:
    from agency.notify.outbox import outbox_counts

    svc = build_agency(load_settings())
    delivered = svc.mail.deliver_due()
    counts = outbox_counts(svc.db)
    print(f"delivered {delivered} via {svc.mail.transport.describe()}; "
          f"{counts['pending']} pending, {counts['dead']} dead")
    return 0


def cmd_mail_list(args) -> int:
    from agency.notify.outbox import describe_message, list_messages

    svc = build_agency(load_settings())
    statuses = args.status or ["pending", "dead"]
    rows = list_messages(svc.db, statuses, limit=args.limit)
    for row in rows:
        print(describe_message(row))
    if not rows:
        print(f"no {' or '.join(statuses)} messages")
    return 0


def cmd_mail_retry(args) -> int:
    from agency.notify.outbox import retry_dead

    if not args.ids and not args.all_dead:
        print("agency: give message ids, or --all-dead", file=sys.stderr)
        return 2
    svc = build_agency(load_settings())
    revived = retry_dead(svc.db, None if args.all_dead else args.ids)
    print(f"{revived} dead message(s) will be tried again")
    return 0


def cmd_mddb_load(args) -> int:
    svc = build_agency(load_settings())
    report = svc.mddb.run(mail=False if args.no_mail else None)
    for folder in report.folders:
        print(folder.line())
    print(report.summary())
    if report.skipped_because:
        return 3
    return 1 if report.failed else 0


def _utc(when) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC" if when else "never"


def cmd_mddb_status(_args) -> int:
    svc = build_agency(load_settings())
    status = svc.mddb.status()
    print(f"indexed records: {status.records}")
    print("batch folders: " + (", ".join(f"{n} {s}" for s, n in sorted(status.loads.items())) or "none loaded yet"))
    print(f"last load: started {_utc(status.last_started_at)}, finished {_utc(status.last_finished_at)}: "
          f"{status.last_status or '-'}, {status.last_summary or ''}")
    print(f"running now: {status.lease_holder or 'no'}")
    for load in status.failed:
        print(f"FAILED  {load.folder} (attempt {load.attempts}, {load.loaded_at:%Y-%m-%d %H:%M} UTC): {load.error}")
    return 1 if status.failed else 0


def cmd_submissions_list(args) -> int:
    from agency.admin.submissions import list_submissions

    svc = build_agency(load_settings())
    statuses = args.status or ["failed"]
    lines = list_submissions(svc.db, statuses, limit=args.limit)
    for line in lines:
        print(line.describe())
    if not lines:
        print(f"no {' or '.join(statuses)} submissions")
    return 0


def cmd_submissions_retry(args) -> int:
    from agency.admin.audit import Actor
    from agency.admin.submissions import RetryRefused, retry_failed

    svc = build_agency(load_settings())
    failed = 0
    for submission_id in args.ids:
        try:
            retry_failed(svc.db, submission_id, Actor.operator(), reason=args.reason)
            print(f"submission {submission_id} queued again")
        except RetryRefused as exc:
            print(f"agency: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def cmd_submissions_hold(args) -> int:
    """`agency submissions pause|resume ID...` (admin.queue_control, audited)."""
    from agency.admin.audit import Actor
    from agency.admin.queue_control import QueueError, pause, resume

    svc = build_agency(load_settings())
    failed = 0
    for submission_id in args.ids:
        try:
            with svc.db.transaction() as session:
                if args.action == "pause":
                    pause(session, Actor.operator(), submission_id, reason=args.reason)
                    print(f"submission {submission_id} paused")
                else:
                    status = resume(session, Actor.operator(), submission_id, reason=args.reason)
                    print(f"submission {submission_id} resumed ({status})")
        except QueueError as exc:
            print(f"agency: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def add_submission_commands(sub) -> None:
    """`agency submissions list|retry|pause|resume`: the operator's view of failed (or any) submissions."""
    subs = sub.add_parser("submissions", help="list submissions by state; retry failed ones").add_subparsers(
        dest="action", required=True)
    listing = subs.add_parser("list", help="list submissions (default: the failed ones, with their reasons)")
    listing.add_argument("--status", action="append",
                         choices=["queued", "processing", "paused", "completed", "refused", "failed"],
                         help="only these states (repeatable; default failed)")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_submissions_list)
    retry = subs.add_parser("retry", help="queue failed submissions again, with a fresh set of attempts")
    retry.add_argument("ids", nargs="+", type=int)
    retry.add_argument("--reason", help="why (kept in the audit trail)")
    retry.set_defaults(func=cmd_submissions_retry)
    for action, text in (("pause", "hold queued or processing submissions: no worker takes them until resumed"),
                         ("resume", "put paused submissions back in the queue, where they stopped")):
        held = subs.add_parser(action, help=text)
        held.add_argument("ids", nargs="+", type=int)
        held.add_argument("--reason", help="why (kept in the audit trail)")
        held.set_defaults(func=cmd_submissions_hold)


def cmd_handles_rekey(_args) -> int:
    from agency.handles.store import rekey_stored_names

    svc = build_agency(load_settings())
    with svc.db.transaction() as session:
        moved = rekey_stored_names(session)
    print(f"re-keyed {moved} stored name(s) to ASCII-only case folding")
    return 0


def add_handles_commands(handles) -> None:
    """`agency handles rekey`: once after upgrading, keys of non-ASCII DOIs follow the ASCII-only folding.

    ``handles`` is the `agency handles` command group, which ``add_records_commands`` makes."""
    handles.add_parser("rekey", help="re-key stored non-ASCII DOI names (ASCII-only case folding); "
                                     "run once after upgrading").set_defaults(func=cmd_handles_rekey)


def _operator(args):
    from agency.admin.audit import Actor

    return Actor.operator(getattr(args, "operator", None) or load_settings().operator or None)


def _admin_change(change) -> int:
    """Run an administrative change (a function of the session) in one transaction and print what it did."""
    from agency.admin.transfers import TransferError

    svc = build_agency(load_settings())
    try:
        with svc.db.transaction() as session:
            changes = change(svc, session)
    except (AccountError, TransferError) as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    for done in changes if isinstance(changes, list) else [changes]:
        print(done.line())
    return 0


def cmd_accounts_list(_args) -> int:
    from agency.admin.accounts import list_accounts

    svc = build_agency(load_settings())
    with svc.db.sessions() as session:
        rows = list_accounts(session)
    for a in rows:
        print(f"{a.login:<24} {a.state:<8} {a.email:<32} prefixes {','.join(a.prefixes) or '-'}; "
              f"{a.dois} DOI(s); {a.waiting_submissions} waiting submission(s)")
    if not rows:
        print("no accounts")
    return 0


def cmd_accounts_show(args) -> int:
    from agency.admin.accounts import show_account

    svc = build_agency(load_settings())
    try:
        with svc.db.sessions() as session:
            a = show_account(session, args.login)
    except AccountError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"login: {a.login}\nemail: {a.email}\nstate: {a.state}"
          + (f" since {_utc(a.disabled_at)}" if a.disabled_at else "")
          + f"\ncreated: {_utc(a.created_at)}\nprefixes: {', '.join(a.prefixes) or '-'}\nDOIs: {a.dois}"
          f"\nwaiting submissions: {a.waiting_submissions}")
    return 0


def cmd_accounts_change(args) -> int:
    from agency.admin import accounts as admin_accounts

    actor = _operator(args)
    if args.action == "passwd":
        password = _read_password()
        return _admin_change(lambda svc, s: admin_accounts.set_password(
            s, svc.passwords, actor, args.login, password, args.reason))
    if args.action == "set-email":
        return _admin_change(lambda svc, s: admin_accounts.set_email(s, actor, args.login, args.email, args.reason))
    change = admin_accounts.disable if args.action == "disable" else admin_accounts.enable
    return _admin_change(lambda svc, s: change(s, actor, args.login, args.reason))


def cmd_prefixes_list(args) -> int:
    from agency.admin.prefixes import list_prefixes

    svc = build_agency(load_settings())
    with svc.db.sessions() as session:
        rows = list_prefixes(session, args.account)
    for p in rows:
        elsewhere = f"; served elsewhere: {p.served_elsewhere}" if p.served_elsewhere else ""
        print(f"{p.prefix:<16} owner {p.owner:<24} {p.dois} DOI(s){elsewhere}")
    if not rows:
        print("no prefixes")
    return 0


def cmd_prefixes_change(args) -> int:
    from agency.admin import prefixes

    actor = _operator(args)
    if args.action == "add":
        return _admin_change(lambda svc, s: prefixes.add(s, actor, args.account, args.prefix, args.reason))
    if args.action == "remove":
        return _admin_change(lambda svc, s: prefixes.remove(s, actor, args.prefix, args.reason))
    service = None if args.back else args.service
    if not args.back and not service:
        print("agency: give --service NAME (who serves the prefix now), or --back", file=sys.stderr)
        return 2
    return _admin_change(lambda svc, s: prefixes.mark_served_elsewhere(s, actor, args.prefix, service, args.reason))


def _since(raw: str):
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since wants an ISO date or time (2026-11-30, 2026-11-30T08:00); "
                                         f"got {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_audit(args) -> int:
    from agency.admin.audit import events

    svc = build_agency(load_settings())
    with svc.db.sessions() as session:
        rows = list(events(session, subject=args.subject, since=args.since, limit=args.limit))
        for e in rows:
            detail = " ".join(f"{k}={v}" for k, v in (("before", e.before), ("after", e.after), ("reason", e.reason))
                              if v is not None)
            print(f"{e.at:%Y-%m-%d %H:%M:%S} {e.actor} {e.action} {e.subject} {detail}".rstrip())
    if not rows:
        print("no audit events" + (f" about {args.subject}" if args.subject else ""))
    return 0


def add_admin_commands(sub, accounts):
    """`agency accounts list|show|passwd|disable|enable|set-email`, `agency prefixes ...`, `agency audit`."""
    def reasoned(parser):
        parser.add_argument("--reason", help="why (kept in the audit trail)")
        parser.add_argument("--operator", help="who is making the change (default AGENCY_OPERATOR, else $USER)")
        return parser

    accounts.add_parser("list", help="every account, its state, prefixes and DOIs").set_defaults(
        func=cmd_accounts_list)
    show = accounts.add_parser("show", help="one account")
    show.add_argument("login")
    show.set_defaults(func=cmd_accounts_show)
    for action, text in (("passwd", "set a new password, read from standard input"),
                         ("disable", "stop the account authenticating anywhere; its queued work waits"),
                         ("enable", "let a disabled account in again"),
                         ("set-email", "change the account's e-mail address")):
        parser = reasoned(accounts.add_parser(action, help=text))
        parser.add_argument("login")
        if action == "set-email":
            parser.add_argument("email")
        parser.set_defaults(func=cmd_accounts_change)
    prefixes = sub.add_parser("prefixes", help="DOI and handle prefixes: owners and prefix records").add_subparsers(
        dest="action", required=True)
    add_prefix_commands(prefixes, reasoned)
    add_transfer_commands(sub, reasoned)
    add_archive_commands(sub, reasoned)
    audit = sub.add_parser("audit", help="print the audit trail, oldest first")
    audit.add_argument("--subject", help="e.g. account:press, prefix:10.5555, transfer:3, or a kind ending in ':'")
    audit.add_argument("--since", type=_since, help="ISO date or time (UTC unless it says otherwise)")
    audit.add_argument("--limit", type=int, default=1000)
    audit.set_defaults(func=cmd_audit)
    return prefixes


def cmd_transfers(args) -> int:
    from agency.admin import transfers

    actor = _operator(args)
    if args.action == "list":
        svc = build_agency(load_settings())
        with svc.db.sessions() as session:
            rows = transfers.list_transfers(session, status=args.status)
        for row in rows:
            print(row.line())
        if not rows:
            print("no transfers")
        return 0
    if args.action == "open":
        return _admin_change(lambda svc, s: transfers.open_transfer(
            s, actor, args.to, from_login=args.from_login, dois=args.doi or None, title=args.title,
            prefix=args.prefix))
    if args.action == "consent":
        return _admin_change(lambda svc, s: transfers.consent(s, actor, args.transfer_id, args.account,
                                                              auto_complete=svc.settings.transfers_auto))
    change = transfers.complete if args.action == "complete" else transfers.withdraw
    return _admin_change(lambda svc, s: change(s, actor, args.transfer_id, args.reason))


def cmd_export(args) -> int:
    from agency.admin.archive import ArchiveError, export_prefix

    svc = build_agency(load_settings())
    try:
        with svc.db.sessions() as session:
            counts = export_prefix(session, svc.settings, args.prefix, Path(args.file))
    except (ArchiveError, AccountError, OSError) as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"exported {args.prefix} to {args.file}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    print(f"  then, once the other agency serves it: agency prefixes served-elsewhere {args.prefix} --service NAME")
    return 0


def cmd_import(args) -> int:
    from agency.admin.archive import ArchiveError, import_prefix

    svc = build_agency(load_settings())
    try:
        with svc.db.transaction() as session:
            report = import_prefix(session, svc.settings, _operator(args), Path(args.file), args.account)
    except (ArchiveError, AccountError, OSError) as exc:
        print(f"agency: {exc} (nothing was imported)", file=sys.stderr)
        return 2
    print(report.line())
    return 0


def add_archive_commands(sub, reasoned) -> None:
    """`agency export --prefix P FILE` and `agency import FILE --account LOGIN` (DOI Handbook 9.1.6)."""
    export = sub.add_parser("export", help="write a prefix's archive: handles, metadata, titles, batch files")
    export.add_argument("--prefix", required=True)
    export.add_argument("file")
    export.set_defaults(func=cmd_export)
    importing = reasoned(sub.add_parser("import", help="load a prefix archive for an account (checked first)"))
    importing.add_argument("file")
    importing.add_argument("--account", required=True)
    importing.set_defaults(func=cmd_import)


def add_transfer_commands(sub, reasoned) -> None:
    """`agency transfers open|consent|complete|withdraw|list` (DOI Handbook 9.1.5)."""
    transfers = sub.add_parser("transfers", help="move DOIs between registrants").add_subparsers(
        dest="action", required=True)
    opening = reasoned(transfers.add_parser("open", help="open a transfer of DOIs, a title or a prefix"))
    opening.add_argument("--from", dest="from_login", required=True, help="the account giving the DOIs")
    opening.add_argument("--to", required=True, help="the account receiving them")
    what = opening.add_mutually_exclusive_group(required=True)
    what.add_argument("--doi", action="append", help="a DOI (repeatable)")
    what.add_argument("--title", help="every DOI of the title record with this ISSN/ISBN")
    what.add_argument("--prefix", help="the prefix and every DOI under it")
    opening.set_defaults(func=cmd_transfers)
    consent = reasoned(transfers.add_parser("consent", help="record a party's consent (received in writing)"))
    consent.add_argument("transfer_id", type=int)
    consent.add_argument("--account", required=True, help="the consenting party")
    consent.set_defaults(func=cmd_transfers)
    for action, text in (("complete", "move the DOIs now (both parties have consented)"),
                         ("withdraw", "call the transfer off; nothing moves")):
        parser = reasoned(transfers.add_parser(action, help=text))
        parser.add_argument("transfer_id", type=int)
        parser.set_defaults(func=cmd_transfers)
    listing = transfers.add_parser("list", help="transfers, newest first")
    listing.add_argument("--status", choices=["open", "completed", "withdrawn"])
    listing.set_defaults(func=cmd_transfers)


def add_prefix_commands(prefixes, reasoned) -> None:
    """`agency prefixes add|remove|list|served-elsewhere` (ownership; one owner per prefix)."""
    add = reasoned(prefixes.add_parser("add", help="give a prefix to an account"))
    add.add_argument("prefix")
    add.add_argument("--account", required=True)
    add.set_defaults(func=cmd_prefixes_change)
    remove = reasoned(prefixes.add_parser("remove", help="take away a prefix that has no DOIs"))
    remove.add_argument("prefix")
    remove.set_defaults(func=cmd_prefixes_change)
    listing = prefixes.add_parser("list", help="prefixes, owners and DOI counts")
    listing.add_argument("--account")
    listing.set_defaults(func=cmd_prefixes_list)
    elsewhere = reasoned(prefixes.add_parser(
        "served-elsewhere", help="mark a prefix as now served by another agency (after `agency export`)"))
    elsewhere.add_argument("prefix")
    elsewhere.add_argument("--service", help="the service that now holds it, e.g. 'Crossref (https://doi.org)'")
    elsewhere.add_argument("--back", action="store_true", help="the prefix is served here again")
    elsewhere.set_defaults(func=cmd_prefixes_change)
def cmd_callbacks_send(_args) -> int:
    svc = build_agency(load_settings())
    print(f"delivered {svc.callbacks.deliver_due()} notification callback(s)")
    return 0


def cmd_callbacks_list(args) -> int:
    from agency.notify.callbacks import describe_delivery, list_deliveries

    svc = build_agency(load_settings())
    for row in list_deliveries(svc.db, args.status or ["pending", "dead"], args.limit):
        print(describe_delivery(row))
    return 0


def cmd_datacite_convert(args) -> int:
    """Move a registered DOI between the Crossref and DataCite (MDS) interfaces, with an audit event."""
    from agency.admin.audit import Actor
    from agency.datacite.states import convert

    svc = build_agency(load_settings())
    try:
        with svc.db.transaction() as session:
            convert(session, args.doi, args.to, Actor.operator(args.operator), reason=args.reason)
    except (LookupError, ValueError) as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 1
    print(f"{args.doi} is now managed through {args.to}")
    return 0


def cmd_datacite_reindex(args) -> int:
    """Index the findable MDS DOIs again from the bodies kept under batches/."""
    svc = build_agency(load_settings())
    with svc.db.transaction() as session:
        count = svc.mds.reindex(session, args.prefix)
    print(f"{count} findable DataCite DOI(s) indexed again from their files under batches/")
    return 0


def cmd_db(args) -> int:
    """Schema migrations: upgrade, downgrade, current, history (and revision, for developers)."""
    from agency import migrations
    from agency.db import open_database

    if args.action == "history":
        print("\n".join(migrations.history()))
        return 0
    if args.action == "revision":
        path = migrations.new_revision(args.message)
        print(f"wrote {path}: check it, then commit it")
        return 0
    settings = load_settings()
    db = open_database(settings.effective_database_url, settings.sqlite_cache_mib)
    try:
        if args.action in ("upgrade", "downgrade"):
            import logging

            logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)  # each step it runs
            step = migrations.upgrade if args.action == "upgrade" else migrations.downgrade
            try:
                reached = step(db, args.revision)
            except migrations.MigrationRefused as exc:
                print(f"agency: {exc}", file=sys.stderr)
                return 2 if isinstance(exc, migrations.UnknownRevision) else 1
            head = " (head)" if set(reached) == set(migrations.head_revisions()) else ""
            print(f"database at {', '.join(reached) or 'base'}{head}")
            return 0
        with db.engine.connect() as connection:
            current = migrations.current_revisions(connection)
        heads = migrations.head_revisions()
        print(f"current: {', '.join(current) or 'none'}; head: {', '.join(heads)}"
              + ("" if set(current) == set(heads) else f" (behind: run `{migrations.UPGRADE_COMMAND}`)"))
        return 0 if set(current) == set(heads) else 1
    finally:
        db.engine.dispose()


def add_db_commands(sub) -> None:
    parser = sub.add_parser("db", help="schema migrations (Alembic)")
    parser.set_defaults(func=cmd_db)
    db = parser.add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="upgrade the database's schema (default: to the newest revision)")
    upgrade.add_argument("revision", nargs="?", default="heads")
    downgrade = db.add_parser("downgrade", help="take the schema back to REVISION (undoing an upgrade)")
    downgrade.add_argument("revision")
    db.add_parser("current", help="the database's revision and the newest one (exit 1 when behind)")
    db.add_parser("history", help="every revision, newest first")
    revision = db.add_parser("revision", help="write a new revision from the models' differences (developers)")
    revision.add_argument("-m", "--message", required=True)
def cmd_handle_server(args) -> int:
    """Run the Handle protocol server alone, or write the HS_SITE record for the Directory Manager."""
    from agency.handles.protocol.assembly import site_record

    settings = load_settings()
    port = args.port if args.port is not None else (settings.handle_port or 2641)
    if args.sql_views:
        from agency.handles.sql_storage import create_storage_views

        svc = build_agency(settings)
        try:
            create_storage_views(svc.db.engine, settings.handle_sql_schema, settings.handle_ttl)
        except (RuntimeError, ValueError) as exc:
            print(f"agency: {exc}", file=sys.stderr)
            return 2
        print(f"views {settings.handle_sql_schema}.nas and {settings.handle_sql_schema}.handles are in place")
        return 0
    if args.site_info:
        record = site_record(settings, port).encode()
        Path(args.site_info).write_bytes(record)
        print(f"wrote the HS_SITE record ({len(record)} octets, serial {settings.handle_site_serial}, "
              f"{settings.handle_public_address}:{port}) to {args.site_info}")
        return 0
    settings = settings.replace(handle_host=args.host or settings.handle_host)
    processes = args.processes or settings.handle_processes
    if processes <= 1:
        return _serve_handles(settings, port, None)
    return _serve_handles_in_processes(settings, port, processes)


def _serve_handles(settings, port: int, sockets) -> int:
    from agency.handles.protocol.assembly import build_handle_server
    from agency.services import handle_audit

    svc = build_agency(settings)
    server = build_handle_server(svc.settings, svc.db, audit=handle_audit, port=port, sockets=sockets)
    if sockets is None:
        print(f"handle protocol on {svc.settings.handle_host}:{server.port} (TCP and UDP)", flush=True)
    settle_startup_heap()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _serve_handles_in_processes(settings, port: int, processes: int) -> int:
    """Several server processes on one port (the sockets bound once, inherited): the kernel spreads datagrams
    and connections over them, so resolution is not held to one interpreter's lock. Challenges live in the
    database, so an answer may reach any process."""
    import os
    import signal

    from agency.handles.protocol.assembly import site_record
    from agency.handles.protocol.server import bind_pair

    svc = build_agency(settings)  # tables exist before the children start
    svc.db.engine.dispose()
    site_record(settings, port)  # the key pair, made once, before the children read it
    sockets = bind_pair(settings.handle_host, port)
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = _serve_handles(settings, port, sockets)
            finally:
                os._exit(code)
        children.append(pid)

    def stop_children(_signum, _frame) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    print(f"handle protocol on {settings.handle_host}:{sockets[0].getsockname()[1]} (TCP and UDP, "
          f"{processes} processes)", flush=True)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return 0


def cmd_prefix_record_create(args) -> int:
    from agency.handles.prefix_records import PrefixRecordError, create_prefix_record, parse_reference
    from agency.services import handle_audit

    svc = build_agency(load_settings())
    try:
        with svc.db.transaction() as session:
            values = create_prefix_record(
                session, args.prefix, args.account, ra_admin=parse_reference(svc.settings.handle_ra_admin),
                service_handle=svc.settings.handle_service, ttl=svc.settings.handle_ttl,
                actor=f"operator:{_operator_name()}", audit=handle_audit)
    except PrefixRecordError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"0.NA/{args.prefix.strip().lower()} written for account {args.account}: "
          + ", ".join(f"{v.index} {v.type}" for v in values))
    return 0


def cmd_prefix_record_secret(args) -> int:
    from agency.handles.prefix_records import PrefixRecordError, set_prefix_secret
    from agency.services import handle_audit

    svc = build_agency(load_settings())
    secret = _read_password()
    try:
        with svc.db.transaction() as session:
            set_prefix_secret(session, args.prefix, secret, actor=f"operator:{_operator_name()}", audit=handle_audit,
                              index=args.index)
    except PrefixRecordError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"secret key set at {args.index}:0.NA/{args.prefix.strip().lower()} (stored hashed: clients "
          "authenticate with the hashed-secret option)")
    return 0


def cmd_prefix_record_pubkey(args) -> int:
    from agency.handles.prefix_records import PrefixRecordError, set_prefix_public_key
    from agency.services import handle_audit

    svc = build_agency(load_settings())
    try:
        raw = sys.stdin.buffer.read() if args.key_file == "-" else Path(args.key_file).read_bytes()
    except OSError as exc:
        print(f"agency: cannot read {args.key_file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with svc.db.transaction() as session:
            encoded = set_prefix_public_key(session, args.prefix, raw, actor=f"operator:{_operator_name()}",
                                            audit=handle_audit, index=args.index)
    except PrefixRecordError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    kind = encoded[4:4 + int.from_bytes(encoded[:4], "big")].decode("ascii")
    print(f"public key ({kind}) set at {args.index}:0.NA/{args.prefix.strip().lower()}: the administrator "
          "authenticates with its private key (HS_PUBKEY)")
    return 0


def _operator_name() -> str:
    from agency.admin.audit import Actor

    return Actor.operator().name


def add_prefix_record_parsers(prefixes) -> None:
    """`agency prefixes create|secret`: prefix records (0.NA/<prefix>) and the prefix administrator's key."""
    create = prefixes.add_parser("create", help="write the prefix record 0.NA/PREFIX (Handbook 9.1.1) "
                                                "and give the prefix to an account")
    create.add_argument("prefix", help="10.NNNN, or a handle prefix such as 20.500.12345")
    create.add_argument("--account", required=True, help="login of the owning account")
    create.set_defaults(func=cmd_prefix_record_create)
    secret = prefixes.add_parser("secret", help="set or rotate the prefix administrator's secret key "
                                                "(one line on standard input, stored hashed)")
    secret.add_argument("prefix")
    secret.add_argument("--index", type=int, default=300, help="HS_SECKEY index (default 300)")
    secret.set_defaults(func=cmd_prefix_record_secret)
    pubkey = prefixes.add_parser("pubkey", help="set or rotate the prefix administrator's public key (HS_PUBKEY), "
                                                "replacing a secret key at the same index")
    pubkey.add_argument("prefix")
    pubkey.add_argument("key_file", help="RSA or DSA public key: PEM, DER, or Handle's encoding (CNRI's "
                                         "admpub.bin); - reads standard input")
    pubkey.add_argument("--index", type=int, default=300, help="HS_PUBKEY index (default 300)")
    pubkey.set_defaults(func=cmd_prefix_record_pubkey)


def add_handle_server_parser(sub) -> None:
    server = sub.add_parser("handle-server", help="run the Handle protocol server (RFC 3652) on TCP and UDP")
    server.add_argument("--host", default=None, help="listen address (default AGENCY_HANDLE_HOST)")
    server.add_argument("--port", type=int, default=None, help="TCP and UDP port (default AGENCY_HANDLE_PORT or 2641)")
    server.add_argument("--processes", type=int, default=None,
                        help="server processes sharing the port (default AGENCY_HANDLE_PROCESSES)")
    server.add_argument("--site-info", metavar="FILE",
                        help="write this service's HS_SITE record (siteinfo.bin) to FILE and exit")
    server.add_argument("--sql-views", action="store_true",
                        help="create Handle.Net's SQL storage tables (nas, handles) as views for a stock "
                             "Handle.Net server (PostgreSQL) and exit")
    server.set_defaults(func=cmd_handle_server)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agency", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    accounts = sub.add_parser("accounts", help="registrant accounts").add_subparsers(dest="action", required=True)
    create = accounts.add_parser("create", help="create an account; password on standard input")
    create.add_argument("login")
    create.add_argument("--email", required=True)
    create.add_argument("--prefix", action="append", default=[], help="a DOI prefix it owns (repeatable)")
    create.set_defaults(func=cmd_accounts_create)
    prefixes = add_admin_commands(sub, accounts)

    operators = sub.add_parser("operators", help="RA staff accounts (the /staff/ console)").add_subparsers(
        dest="action", required=True)
    operator = operators.add_parser("create", help="create an operator; password on standard input")
    operator.add_argument("name")
    operator.set_defaults(func=cmd_operators_create)

    serve = sub.add_parser("serve", help="run the HTTP service with the worker and scheduler in-process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument("--demo", action="store_true", help="create (once) and print a demo account")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a deposit worker process (and the scheduler, when elected)")
    worker.add_argument("--once", action="store_true",
                        help="stop when nothing is queued or processing (waits out dead workers' leases)")
    worker.add_argument("--timeout", type=float, default=3600)
    worker.set_defaults(func=cmd_worker)

    query = sub.add_parser("query", help="answer a piped query file (DOIs from citation metadata)")
    query.add_argument("file", nargs="?", default="-", help="the query file (default: standard input)")
    query.set_defaults(func=cmd_query)

    config = sub.add_parser("config", help="every AGENCY_* setting: its effective value and where it came from")
    config.set_defaults(func=cmd_config)

    mddb = sub.add_parser("mddb", help="the metadata database: load completed batches, show status").add_subparsers(
        dest="action", required=True)
    load = mddb.add_parser("load", help="load every completed batch not loaded yet, now (exit 1 if any failed)")
    load.add_argument("--no-mail", action="store_true",
                      help="do not email combined diagnostics (e.g. rebuilding the index from a copy of batches/)")
    load.set_defaults(func=cmd_mddb_load)
    mddb.add_parser("status", help="counts, the last load, failed batch folders").set_defaults(func=cmd_mddb_status)

    callbacks = sub.add_parser("callbacks", help="notification callbacks: deliver and inspect").add_subparsers(
        dest="action", required=True)
    callbacks.add_parser("send", help="deliver the notices that are due now").set_defaults(func=cmd_callbacks_send)
    listed = callbacks.add_parser("list", help="list pending and dead notices")
    listed.add_argument("--status", action="append", choices=["pending", "dead", "sent"])
    listed.add_argument("--limit", type=int, default=100)
    listed.set_defaults(func=cmd_callbacks_list)

    datacite = sub.add_parser("datacite", help="DataCite MDS DOIs").add_subparsers(dest="action", required=True)
    converting = datacite.add_parser("convert", help="let the other interface (crossref or datacite) manage a DOI")
    converting.add_argument("doi")
    converting.add_argument("--to", required=True, choices=["crossref", "datacite"])
    converting.add_argument("--reason", help="why (kept in the audit trail)")
    converting.add_argument("--operator", help="who (default: AGENCY_OPERATOR or the login)")
    converting.set_defaults(func=cmd_datacite_convert)
    reindexing = datacite.add_parser("reindex", help="index the findable DOIs again from their kept MDS bodies")
    reindexing.add_argument("--prefix", help="only this prefix's DOIs")
    reindexing.set_defaults(func=cmd_datacite_reindex)

    from agency.upload.command import add_parser as add_upload_parser

    add_upload_parser(sub)

    mail = sub.add_parser("mail", help="the outbox: deliver and inspect mail").add_subparsers(
        dest="action", required=True)
    mail.add_parser("send", help="deliver the messages that are due now").set_defaults(func=cmd_mail_send)
    listing = mail.add_parser("list", help="list pending and dead messages")
    listing.add_argument("--status", action="append", choices=["pending", "dead", "sent"],
                         help="only these states (repeatable; default pending and dead)")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_mail_list)
    retry = mail.add_parser("retry", help="try dead messages again, with a fresh set of attempts")
    retry.add_argument("ids", nargs="*", type=int)
    retry.add_argument("--all-dead", action="store_true")
    retry.set_defaults(func=cmd_mail_retry)
    add_handles_commands(add_records_commands(sub))
    add_submission_commands(sub)
    add_db_commands(sub)
    add_handle_server_parser(sub)
    add_prefix_record_parsers(prefixes)
    return parser


# -- keeping records right (issue 13): withdrawals, version resets, the depositor report -------------

def _run_change(change, errors, done) -> int:
    """Run ``change(svc, session)`` in one transaction; print ``done(result)``, or the error (exit 2)."""
    svc = build_agency(load_settings())
    try:
        with svc.db.transaction() as session:
            result = change(svc, session)
    except errors as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(done(result))
    return 0


def cmd_handles_withdraw(args) -> int:
    from agency.admin.audit import Actor
    from agency.admin.withdrawals import WithdrawalError, withdraw

    return _run_change(lambda svc, session: withdraw(session, Actor.operator(), args.doi, args.reason,
                                                     svc.settings.base_url, svc.settings.handle_ttl),
                       WithdrawalError, lambda tomb: f"withdrew {tomb.doi}: it resolves to its tombstone page now")


def cmd_handles_reinstate(args) -> int:
    from agency.admin.audit import Actor
    from agency.admin.withdrawals import WithdrawalError, reinstate

    return _run_change(lambda svc, session: reinstate(session, Actor.operator(), args.doi, args.reason,
                                                      svc.settings.handle_ttl),
                       WithdrawalError, lambda url: f"reinstated {args.doi}: it resolves to "
                                                    f"{url or 'its pending-publication page'} again")


def cmd_handles_reset_version(args) -> int:
    from agency.admin.audit import Actor
    from agency.admin.versions import ResetError, reset_versions

    return _run_change(lambda _svc, session: reset_versions(session, Actor.operator(), args.to, args.reason,
                                                            dois=args.dois or None, prefix=args.prefix,
                                                            submission_id=args.submission),
                       ResetError, lambda changed: f"reset the stored version of {changed} DOI(s) to {args.to}")


def cmd_report_depositor(args) -> int:
    from agency.admin.reports import UnknownPrefix, as_csv, as_json, depositor_rows, registrant_for_prefix

    svc = build_agency(load_settings())
    try:
        with svc.db.sessions() as session:
            registrant = registrant_for_prefix(session, args.prefix, args.account)
        rows = depositor_rows(svc.db, registrant, args.prefix, args.title)
    except UnknownPrefix:
        print(f"agency: no account {'named ' + args.account + ' ' if args.account else ''}owns prefix "
              f"{args.prefix}", file=sys.stderr)
        return 2
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        out.writelines(as_json(rows, args.prefix) if args.format == "json" else as_csv(rows))
    finally:
        if args.output:
            out.close()
    return 0


def add_records_commands(sub):
    handles = sub.add_parser("handles", help="registered DOIs: withdraw, reinstate, reset versions").add_subparsers(
        dest="action", required=True)
    withdraw = handles.add_parser("withdraw", help="point a DOI at its tombstone page (kept, never deleted)")
    withdraw.add_argument("doi")
    withdraw.add_argument("--reason", required=True, help="shown on the tombstone page and kept in the audit trail")
    withdraw.set_defaults(func=cmd_handles_withdraw)
    reinstate = handles.add_parser("reinstate", help="undo a withdrawal: the DOI resolves where it did before")
    reinstate.add_argument("doi")
    reinstate.add_argument("--reason", required=True)
    reinstate.set_defaults(func=cmd_handles_reinstate)
    reset = handles.add_parser("reset-version", help="lower stored versions so updates with smaller timestamps pass")
    reset.add_argument("dois", nargs="*", help="DOI names (or use --prefix / --submission)")
    reset.add_argument("--prefix")
    reset.add_argument("--submission", type=int, help="the DOIs this submission last changed")
    reset.add_argument("--to", required=True, help="the new stored version (digits)")
    reset.add_argument("--reason", required=True)
    reset.set_defaults(func=cmd_handles_reset_version)
    report = sub.add_parser("report", help="reports").add_subparsers(dest="action", required=True)
    depositor = report.add_parser("depositor", help="every DOI of the account owning a prefix, streamed")
    depositor.add_argument("--prefix", required=True)
    depositor.add_argument("--account", help="the owning account's login (checked)")
    depositor.add_argument("--title", help="only DOIs whose title, journal or book title contains this")
    depositor.add_argument("--format", choices=("csv", "json"), default="csv")
    depositor.add_argument("--output", help="write to this file instead of standard output")
    depositor.set_defaults(func=cmd_report_depositor)
    return handles


def _configure_logging() -> None:
    """The one logging set-up (agency.operations.logs); a wrong AGENCY_* value is the command's to report."""
    from agency.operations.logs import configure_logging

    from agency.config import unknown_variables

    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
    except SettingError:
        configure_logging()
    for warning in unknown_variables():
        logging.getLogger("agency.config").warning("%s", warning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from agency.migrations import SchemaBehind
    from agency.notify.outbox import MailConfigError

    try:
        _configure_logging()
        return args.func(args)
    except (MailConfigError, SettingError, SchemaBehind) as exc:  # a wrong AGENCY_* value: say so, no traceback
        print(f"agency: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
