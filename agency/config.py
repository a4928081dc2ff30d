"""Every setting of the agency, in one place.

Each field is read from an environment variable named ``AGENCY_<FIELD>`` (upper
case). Defaults give the embedded mode: SQLite in ``./var``, received files in
``./batches``, the worker and scheduler in-process, mail written to a maildir.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "AGENCY_"


PACKAGED_RESOURCES = Path(__file__).resolve().parent / "resources"


def _resource_dir(name: str) -> Path:
    """schemas/ and templates/: inside the installed package (a wheel), else in the checkout
    beside it (an editable install, or running from the source tree); found from any directory."""
    packaged = PACKAGED_RESOURCES / name
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


def setting(default: Any, doc: str, factory: Any = None) -> Any:
    """A settings field with the sentence `agency config` and the README show for it."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = setting(Path("var"), "data folder: the SQLite database, the maildir, the demo password")
    database_url: str = setting("", "SQLAlchemy URL; empty: SQLite in the data folder")
    sqlite_cache_mib: int = setting(64, "SQLite page cache of each database connection, MiB (a bound on its "
                                        "memory): SQLite maps only a file's first 2 GiB, pages past that are read "
                                        "into this cache (docs/scaling.md: 10,000,000 DOIs)")
    batch_dir: Path = setting(Path("batches"), "received files and their logs")
    schema_dir: Path = setting(None, "our XSDs (shipped in the package)", factory=lambda: _resource_dir("schemas"))
    template_dir: Path = setting(None, "Jinja2 templates (shipped in the package)",
                                 factory=lambda: _resource_dir("templates"))
    base_url: str = setting("http://127.0.0.1:8000", "how links in mail point back to this service")
    # Intake limits.
    max_batch_bytes: int = setting(200 * 1024 * 1024, "largest accepted upload (413 above)")
    max_pending_per_account: int = setting(10_000, "queued + processing submissions per account (429 above; Crossref allows 10,000)")
    max_wait_seconds: int = setting(60, "longest ?wait= on POST /v1/deposits")
    max_attributes_per_element: int = setting(256, "attributes on one element of a deposit (413 above)")
    max_children_per_element: int = setting(100_000, "child elements of one element of a deposit, counted in "
                                                     "files with densely packed markup (413 above)")
    max_body_item_bytes: int = setting(8 * 1024 * 1024, "bytes of one element inside <body> (a journal, a book...):"
                                                         " validation holds one whole, ~9x its size (413 above)")
    max_form_parts: int = setting(100, "parts of one multipart upload (fields and files; 413 \"too many parts\" above)")
    # Worker.
    run_worker: bool = setting(True, "run the deposit/query worker inside `agency serve`")
    worker_poll_seconds: float = setting(0.2, "how often an idle worker looks for work")
    worker_slice_records: int = setting(2000, "records a worker runs of one submission before letting others in")
    chunk_records: int = setting(2000, "records committed together (handles, results, progress)")
    lease_seconds: int = setting(120, "a worker's claim on a submission; a dead worker's expires after this")
    # Hardening (issue 10): a submission whose slices keep failing stops as `failed`.
    worker_max_attempts: int = setting(5, "failed slices of one submission before it is marked failed "
                                          "(out-of-space errors back off but never use up attempts)")
    worker_retry_base_seconds: float = setting(2.0, "first retry of a failed slice after this, then doubling ...")
    worker_retry_max_seconds: float = setting(300.0, "... up to this delay (also the back-off while out of space)")
    # Handle store.
    handle_ttl: int = setting(86400, "TTL of the URL value of a handle, seconds")
    # Mail.
    smtp_url: str = setting("", "smtp://host:25, smtp://user:pass@host:587?starttls=1, smtps://host:465; "
                                "empty: .eml files in the maildir")
    mail_from: str = setting("agency@localhost", "sender address")
    operator_email: str = setting("", "the RA staff's address: told of every submission that stopped as failed "
                                      "(empty: only the depositor is told)")
    mail_max_attempts: int = setting(12, "delivery attempts before a message is marked dead")
    mail_retry_base_seconds: int = setting(60, "first retry after this, then doubling ...")
    mail_retry_max_seconds: int = setting(6 * 3600, "... up to this delay between attempts")
    mail_lease_seconds: int = setting(600, "a sender's claim on a message; must outlast one send")
    mail_batch_size: int = setting(200, "messages looked up per round of a delivery run")
    mail_max_attachment_bytes: int = setting(20 * 1024 * 1024, "larger files are not attached (the mail says so)")
    smtp_timeout_seconds: float = setting(60.0, "SMTP connection timeout")
    smtp_ca_file: str = setting("", "extra CA certificates (PEM) to trust for smtps:// and starttls")
    # Metadata database load (APScheduler).
    run_scheduler: bool = setting(True, "run the scheduler (metadata load, mail) inside `agency serve`")
    mddb_hour: int = setting(2, "metadata load daily at this hour (UTC) ...")
    mddb_interval_minutes: int = setting(0, "... or every N minutes when N > 0")
    mddb_misfire_grace_seconds: int = setting(3600, "a run this late still runs (else the next one catches up)")
    mddb_mail: bool = setting(True, "email each loaded batch's combined diagnostic (off when reloading a copy)")
    mddb_in_child_process: bool = setting(True, "the scheduled metadata load runs as a child process at lower CPU "
                                                "priority, so it cannot hold up the web process's request threads")
    mddb_chunk_records: int = setting(5000, "records indexed per transaction")
    mddb_poll_seconds: float = setting(2.0, "the scheduler indexes newly completed deposits (and mails their "
                                            "combined diagnostic) this often; 0: only at the daily load")
    mail_poll_seconds: int = setting(30, "the scheduler delivers due mail this often")
    scheduler_lease_seconds: int = setting(30, "one scheduler runs across processes; when it dies another "
                                               "takes over after this")
    wsgi_background: bool = setting(False, "also run the worker and scheduler inside each WSGI (gunicorn) web "
                                           "process; off: web processes serve, `agency worker` processes work")
    # Queries.
    query_sync_lines: int = setting(30, "query files up to this many lines are answered at once; larger: a job")
    query_max_lines: int = setting(100_000, "longest accepted query file, in lines (413 above)")
    query_max_line_chars: int = setting(2000, "longest accepted query line")
    query_xml_max_queries: int = setting(1000, "most queries in one XML query_batch, answered at once (413 above)")
    query_xml_max_bytes: int = setting(4 * 1024 * 1024, "largest XML query_batch accepted, in bytes (413 above)")
    # Resolution (GET /{doi}).
    resolve_max_age_seconds: int = setting(3600, "Cache-Control max-age of resolver answers: the URL value's TTL, "
                                                 "at most this")
    ra_name: str = setting("agency", "this Registration Agency's name, as /doiRA/{doi} answers it")
    # Notification callbacks (PUT /v1/account/callback), Crossref's notification callback service.
    callback_allow_private: bool = setting(False, "allow callback URLs on loopback/private/link-local addresses "
                                                  "(tests, closed networks)")
    callback_timeout_seconds: float = setting(10.0, "connect and read timeout of one callback request")
    callback_max_response_bytes: int = setting(64 * 1024, "most of a receiver's answer read (the rest is dropped)")
    callback_max_attempts: int = setting(10, "callback attempts before a notice is marked dead")
    callback_retry_base_seconds: int = setting(30, "first callback retry after this, then doubling ...")
    callback_retry_max_seconds: int = setting(3600, "... up to this delay between attempts")
    callback_retrieve_days: int = setting(30, "CROSSREF-RETRIEVE-URL-EXPIRATION-DATE: days a result is promised")
    # Keeping records right (issue 13): bulk URL updates, aliases, withdrawals, reports.
    url_update_max_lines: int = setting(500_000, "longest accepted bulk URL update file, in lines (413 above)")
    url_update_max_line_chars: int = setting(4200, "longest accepted DOI<TAB>URL line")
    report_max_title_chars: int = setting(255, "longest title= filter of the depositor report")
    # Handle protocol server (RFC 3652) and Handle.Net REST writes.
    handle_port: int = setting(0, "TCP and UDP port of the Handle protocol server under `agency serve` "
                                  "(0: not started; production: 2641). `agency handle-server` defaults to 2641")
    handle_host: str = setting("127.0.0.1", "address the Handle protocol server listens on (IPv4 or IPv6; \"::\" "
                                            "takes both families)")
    handle_public_address: str = setting("127.0.0.1", "IPv4/IPv6 address other handle clients reach this "
                                                      "server at (written into the HS_SITE record)")
    handle_site_serial: int = setting(1, "serial number of the HS_SITE record; raise it when the site changes")
    handle_http_port: int = setting(8000, "HTTP port listed in the HS_SITE record (0: none)")
    handle_max_message_bytes: int = setting(256 * 1024, "largest Handle protocol message accepted (TCP or "
                                                        "reassembled UDP)")
    handle_max_connections: int = setting(256, "open TCP connections to the Handle protocol server")
    handle_read_timeout: float = setting(10.0, "seconds to receive one whole protocol message on TCP")
    handle_idle_timeout: float = setting(30.0, "seconds an idle TCP connection is kept")
    handle_workers: int = setting(8, "threads answering complete protocol messages (database work)")
    handle_max_udp_waiting: int = setting(64, "UDP requests other than resolution waiting for a handle worker; "
                                              "more are dropped (the client retries)")
    handle_udp_threads: int = setting(0, "threads receiving UDP datagrams and answering resolutions; 0: one on "
                                         "SQLite (answers are kept and CPU-bound: 4 threads contending for the "
                                         "GIL answered a quarter of what 1 did), four on PostgreSQL (each "
                                         "resolution waits for a round trip: 4 answered 35% more than 1); other "
                                         "requests go to the handle workers")
    handle_answer_cache_entries: int = setting(100_000, "resolution answers each handle-server process keeps "
                                                        "while the SQLite database is unchanged (0: none; "
                                                        "PostgreSQL: never kept)")
    handle_answer_cache_bytes: int = setting(64 * 1024 * 1024, "... and the octets they may take at most")
    handle_processes: int = setting(1, "processes of `agency handle-server` sharing its port (one per core)")
    handle_auth_failures: int = setting(5, "wrong key answers (protocol and REST) from one client address within "
                                           "the window before that address is refused (counted per process)")
    handle_auth_failures_per_key: int = setting(10, "wrong answers for one key (index:handle), from any address, "
                                                    "within the window before it is refused, except from addresses "
                                                    "it succeeded from")
    handle_auth_window_seconds: int = setting(300, "how long a wrong key answer counts (and the longest wait)")
    handle_ra_admin: str = setting("300:0.NA/10", "the RA's administrator key (index:handle) that HS_ADMIN 100 of "
                                                  "every prefix record names")
    handle_service: str = setting("0.NA/10", "the service handle HS_SERV of every prefix record names")
    handle_sql_schema: str = setting("handle_net", "PostgreSQL schema of the Handle.Net SQL storage views "
                                                   "(`agency handle-server --sql-views`)")
    handle_rest_insecure_writes: bool = setting(False, "allow Handle.Net REST writes over plain HTTP "
                                                       "(tests, loopback); otherwise HTTPS only")
    # Sign-ins (issue 10): throttled per login and per client address, hashes bounded.
    sign_in_failures_per_login: int = setting(10, "failed sign-ins for one login within the window before 429")
    sign_in_failures_per_address: int = setting(30, "failed sign-ins from one client address within the window "
                                                    "before 429")
    sign_in_window_seconds: int = setting(300, "how long a failed sign-in counts (and the longest Retry-After)")
    password_hash_slots: int = setting(0, "password hashes computed at once (0: half the CPUs, at least 1)")
    password_hash_waiting: int = setting(2, "sign-ins queued for a hash slot beyond those; more get 503")
    password_hash_wait_seconds: float = setting(2.0, "longest wait for a hash slot before 503 + Retry-After")
    password_hash_niceness: int = setting(4, "CPU priority lowered this much (Linux nice) for hashing threads, "
                                             "so request threads come first; 0: not lowered")
    # Web interface (issue 14): signed-cookie sessions, sign-in throttling, page sizes.
    secret_key: str = setting("", "key that signs session cookies and CSRF tokens; empty: a random key kept in "
                                  "the data folder (session-key.txt), shared by every process using that folder")
    ui_idle_minutes: int = setting(30, "a web session unused this long is signed out")
    ui_sign_in_attempts: int = setting(5, "failed web sign-ins per login, and per address, before a pause ...")
    ui_sign_in_window_seconds: int = setting(900, "... of this many seconds (counted in memory, per process)")
    ui_page_rows: int = setting(50, "rows per page of a web table (records, DOIs, submissions); ?rows= up to 500")
    # DataCite's MDS API (/mds).
    mds_hosts: str = setting("", "comma-separated host names (e.g. mds.example.org) whose requests are the MDS API "
                                 "at / as well as at /mds")
    # Password hashing cost (argon2 time_cost); lower only in tests.
    password_time_cost: int = setting(3, "argon2 time cost of password hashes")
    # Schema migrations (issue 15).
    db_auto_upgrade: bool = setting(False, "upgrade a PostgreSQL schema at start (SQLite always upgrades itself; "
                                           "an empty database is always created)")
    # Logs (issue 15).
    log_format: str = setting("text", "text, or json: one JSON object per line")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")
    # Administration (accounts, prefixes, title records, transfers, export/import).
    operator: str = setting("", "the operator named in the audit trail for CLI changes (empty: the login running it)")
    transfers_auto: bool = setting(False, "complete a transfer as soon as both parties consented (else an operator "
                                          "completes it)")
    archive_max_bytes: int = setting(2 * 1024 ** 3, "largest prefix archive `agency import` reads (bytes, unpacked)")
    archive_max_entries: int = setting(1_000_000, "most files in a prefix archive `agency import` reads")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'agency.db').resolve()}"

    @property
    def udp_threads(self) -> int:
        """``handle_udp_threads``, 0 resolved by the database (see the setting)."""
        if self.handle_udp_threads:
            return self.handle_udp_threads
        return 1 if self.effective_database_url.startswith("sqlite") else 4

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    @property
    def mds_host_names(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.mds_hosts.split(",") if h.strip())

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


class SettingError(ValueError):
    """An AGENCY_* variable whose value cannot be used."""


def _coerce(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise SettingError(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")
        return value in {"1", "true", "yes", "on"}
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise SettingError(f"{name} must be {kind}; got {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``AGENCY_*`` variables, then explicit overrides."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        name = ENV_PREFIX + f.name.upper()
        raw = environ.get(name)
        if raw is not None and raw != "":
            values[f.name] = _coerce(name, raw, getattr(defaults, f.name))
    values.update(overrides)
    settings = Settings(**values)
    found = problems(settings)
    if found:
        raise SettingError(found[0])
    return settings


def settings_environment(settings: Settings) -> dict[str, str]:
    """The ``AGENCY_*`` variables that rebuild ``settings`` in a child process."""
    def text(value: Any) -> str:
        return ("1" if value else "0") if isinstance(value, bool) else str(value)

    return {ENV_PREFIX + f.name.upper(): text(getattr(settings, f.name)) for f in dataclasses.fields(Settings)}


def documented_variables() -> list[tuple[str, Any, str]]:
    """(variable, default, meaning) for every setting, for `agency config`."""
    defaults = Settings()
    return [(ENV_PREFIX + f.name.upper(), getattr(defaults, f.name), f.metadata["doc"])
            for f in dataclasses.fields(Settings)]


# -- Checks beyond the type (issue 15): out-of-range values stop start-up, naming the variable. --------
# (minimum, maximum) of numeric settings; None: no bound on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "max_batch_bytes": (1, None), "max_body_item_bytes": (1024, None), "max_pending_per_account": (1, None), "max_wait_seconds": (0, None),
    "worker_poll_seconds": (0.01, None), "worker_slice_records": (1, None), "chunk_records": (1, None),
    "lease_seconds": (1, None), "handle_ttl": (0, None), "mail_max_attempts": (1, None),
    "mail_retry_base_seconds": (1, None), "mail_retry_max_seconds": (1, None), "mail_lease_seconds": (1, None),
    "mail_batch_size": (1, None), "mail_max_attachment_bytes": (0, None), "smtp_timeout_seconds": (0.1, None),
    "mddb_hour": (0, 23), "mddb_interval_minutes": (0, None), "mddb_misfire_grace_seconds": (1, None),
    "mddb_chunk_records": (1, None), "mddb_poll_seconds": (0, None), "mail_poll_seconds": (1, None),
    "scheduler_lease_seconds": (3, None), "query_sync_lines": (0, None), "query_max_lines": (1, None),
    "query_max_line_chars": (1, None), "password_time_cost": (1, None),
    "handle_answer_cache_entries": (0, None), "handle_answer_cache_bytes": (0, None),
    "handle_workers": (1, None), "handle_udp_threads": (0, None), "handle_max_udp_waiting": (1, None),
    "handle_auth_failures": (1, None), "handle_auth_failures_per_key": (1, None),
    "handle_auth_window_seconds": (1, None), "sqlite_cache_mib": (1, 65536),
}
CHOICES: dict[str, tuple[str, ...]] = {"log_format": ("text", "json"),
                                      "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}
DATABASE_SCHEMES = ("sqlite", "postgresql")
# AGENCY_ variables that are not settings of the service (the test suite's, benchmarks' and upload client's own).
NOT_SETTINGS = frozenset({"AGENCY_TEST_DATABASE_URL", "AGENCY_BENCH_DATABASE_URL", "AGENCY_TEST_ARTIFACTS",
                          "AGENCY_TEST_PROCESSES",
                          "AGENCY_PASSWORD"})


def _variable(name: str) -> str:
    return ENV_PREFIX + name.upper()


def problems(settings: Settings) -> list[str]:
    """Every value that is out of range or otherwise unusable, one line each, naming its variable."""
    found = []
    for name, (low, high) in RANGES.items():
        value = getattr(settings, name, None)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            found.append(f"{_variable(name)} must be {bounds}; got {value}")
    for name, allowed in CHOICES.items():
        value = getattr(settings, name, None)
        if value is not None and value.upper() not in allowed and value not in allowed:
            found.append(f"{_variable(name)} must be one of {', '.join(allowed)}; got {value!r}")
    url = settings.database_url
    if url:
        scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme == "postgres":
            found.append("AGENCY_DATABASE_URL starts with postgres://, which SQLAlchemy does not take: write "
                         "postgresql+psycopg://" + url.split("://", 1)[-1].split("@")[-1])
        elif scheme not in DATABASE_SCHEMES or "://" not in url:
            found.append(f"AGENCY_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL; got {scheme}:...")
    return found


@dataclass(frozen=True)
class SettingReport:
    """One setting as `agency config` shows it."""

    variable: str
    value: Any
    source: str  # "environment" or "default"
    doc: str
    error: str | None = None


def describe_settings(environ: Mapping[str, str] | None = None) -> list[SettingReport]:
    """Every setting's effective value and where it came from, with what is wrong with it (never raises)."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    reports, values = [], {}
    for f in dataclasses.fields(Settings):
        name = _variable(f.name)
        raw = environ.get(name)
        if raw is None or raw == "":
            reports.append(SettingReport(name, getattr(defaults, f.name), "default", f.metadata["doc"]))
            continue
        try:
            values[f.name] = _coerce(name, raw, getattr(defaults, f.name))
            reports.append(SettingReport(name, values[f.name], "environment", f.metadata["doc"]))
        except SettingError as exc:
            reports.append(SettingReport(name, raw, "environment", f.metadata["doc"], str(exc)))
    wrong = {line.split(" ", 1)[0]: line for line in problems(Settings(**values))}
    return [dataclasses.replace(r, error=r.error or wrong.get(r.variable)) for r in reports]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per AGENCY_ variable that is no setting (a misspelling goes unnoticed otherwise)."""
    import difflib

    environ = os.environ if environ is None else environ
    known = [_variable(f.name) for f in dataclasses.fields(Settings)]
    warnings = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{name} is not an agency setting and is ignored{hint}; `agency config` lists them")
    return warnings
