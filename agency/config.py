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


def _resource_dir(name: str) -> Path:
    """schemas/ and templates/ live beside the package; found from anywhere."""
    return PROJECT_ROOT / name


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # default: sqlite in data_dir
    batch_dir: Path = Path("batches")
    schema_dir: Path = field(default_factory=lambda: _resource_dir("schemas"))
    template_dir: Path = field(default_factory=lambda: _resource_dir("templates"))
    base_url: str = "http://127.0.0.1:8000"
    # Intake limits.
    max_batch_bytes: int = 200 * 1024 * 1024
    max_pending_per_account: int = 20
    max_wait_seconds: int = 60
    # Worker.
    run_worker: bool = True
    worker_poll_seconds: float = 0.2
    worker_slice_records: int = 2000
    chunk_records: int = 1000
    lease_seconds: int = 120
    # Handle store.
    handle_ttl: int = 86400
    # Mail.
    smtp_url: str = ""  # empty: write .eml files to data_dir/maildir
    mail_from: str = "agency@localhost"
    mail_max_attempts: int = 12
    mail_retry_base_seconds: int = 60  # first retry after this, then doubling ...
    mail_retry_max_seconds: int = 6 * 3600  # ... up to this delay between attempts
    mail_lease_seconds: int = 600  # a sender's claim on a message; must outlast one send
    mail_batch_size: int = 200  # messages looked up per round of a delivery run
    mail_max_attachment_bytes: int = 20 * 1024 * 1024  # larger files are not attached (the mail says so)
    smtp_timeout_seconds: float = 60.0
    smtp_ca_file: str = ""  # extra CA certificates (PEM) to trust for smtps:// and starttls
    # Metadata database load (APScheduler).
    run_scheduler: bool = True
    mddb_hour: int = 2  # daily at this hour (UTC) ...
    mddb_interval_minutes: int = 0  # ... or every N minutes when > 0
    mddb_misfire_grace_seconds: int = 3600  # a run this late still runs (else the next one catches up)
    mddb_mail: bool = True  # email each loaded batch's combined diagnostic to its depositor
    mddb_chunk_records: int = 5000  # records indexed per transaction (SQLite: the worker waits that long)
    mail_poll_seconds: int = 30  # the scheduler delivers due mail this often
    # Queries.
    query_sync_lines: int = 30
    query_max_lines: int = 100_000
    query_max_line_chars: int = 2000
    # Password hashing cost (argon2 time_cost); lower only in tests.
    password_time_cost: int = 3

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'agency.db').resolve()}"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``AGENCY_*`` variables, then explicit overrides."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            values[f.name] = _coerce(raw, getattr(defaults, f.name))
    values.update(overrides)
    return Settings(**values)


def documented_variables() -> list[tuple[str, Any]]:
    """(variable, default) pairs, for the README and `agency config`."""
    defaults = Settings()
    return [(ENV_PREFIX + f.name.upper(), getattr(defaults, f.name)) for f in dataclasses.fields(Settings)]
