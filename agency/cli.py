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
    svc = build_agency(load_settings())
    password = _read_password()
    try:
        with svc.db.transaction() as session:
            registrant = create_account(session, svc.passwords, args.login, args.email, password, args.prefix)
    except AccountError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"created account {registrant.login} (id {registrant.id}) with prefixes "
          f"{', '.join(sorted(registrant.prefixes)) or '(none)'}")
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
    from waitress import serve

    from agency.app import create_app

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
        serve(app, host=args.host, port=args.port, threads=args.threads, ident="agency",
              inbuf_overflow=32 * 1024 * 1024, recv_bytes=256 * 1024)
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


def cmd_db(args) -> int:
    """Schema migrations: upgrade, current, history (and revision, for developers)."""
    from agency import migrations
    from agency.db import open_database

    if args.action == "history":
        print("\n".join(migrations.history()))
        return 0
    if args.action == "revision":
        path = migrations.new_revision(args.message)
        print(f"wrote {path}: check it, then commit it")
        return 0
    db = open_database(load_settings().effective_database_url)
    try:
        if args.action == "upgrade":
            import logging

            logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)  # each step it runs
            print(f"database at {', '.join(migrations.upgrade(db, args.revision))} (head)")
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
                actor=f"operator:{_operator()}", audit=handle_audit)
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
            set_prefix_secret(session, args.prefix, secret, actor=f"operator:{_operator()}", audit=handle_audit,
                              index=args.index)
    except PrefixRecordError as exc:
        print(f"agency: {exc}", file=sys.stderr)
        return 2
    print(f"secret key set at {args.index}:0.NA/{args.prefix.strip().lower()} (stored hashed: clients "
          "authenticate with the hashed-secret option)")
    return 0


def _operator() -> str:
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
    add_db_commands(sub)
    add_handle_server_parser(sub)
    add_prefix_record_parsers(sub.add_parser("prefixes", help="prefixes and their prefix records").add_subparsers(
        dest="action", required=True))
    return parser


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
