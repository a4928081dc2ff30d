"""Logging for every process (``agency serve``, ``agency worker``, the WSGI entry point): one setup.

Lines go to standard error, as text or as one JSON object per line
(``AGENCY_LOG_FORMAT=json``). Credentials never reach a line: query strings are
logged with the values of password fields replaced (``redact_query``), and the
request line is built from those, never from the raw URL.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode

from agency.config import SettingError

# Crossref-style clients send passwords in query strings and form fields under these names.
CREDENTIAL_FIELDS = frozenset({"pwd", "login_passwd", "passwd", "password"})
REDACTED = "[redacted]"
LOG_FORMATS = ("text", "json")
# Chatty libraries: their routine INFO lines drowned the service's own (37 of 50 lines were
# APScheduler's "Running job ..."); they still log warnings and errors.
QUIET_LOGGERS = ("apscheduler", "alembic", "waitress.queue")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact_query(query: str) -> str:
    """The query string with every credential field's value replaced (the names stay, to debug clients)."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in CREDENTIAL_FIELDS for name, _ in pairs):
        return query
    return urlencode([(name, REDACTED if name.lower() in CREDENTIAL_FIELDS else value) for name, value in pairs],
                     safe="[]/:@")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _AgencyHandler(logging.StreamHandler):
    """The handler this module installed (configuring again replaces it instead of doubling lines).

    Without an explicit stream it writes to whatever ``sys.stderr`` is when a line is
    logged, not the one at set-up (test runners and daemons swap it)."""

    def __init__(self, stream=None) -> None:
        super().__init__(stream or sys.stderr)
        self._follows_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follows_stderr:
            self.stream = sys.stderr
        super().emit(record)


def configure_logging(log_format: str = "text", level: str = "INFO", stream=None) -> None:
    """Install the one root handler every agency process logs through."""
    if log_format not in LOG_FORMATS:
        raise SettingError(f"AGENCY_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}; got {log_format!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise SettingError(f"AGENCY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR; got {level!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _AgencyHandler)]:
        root.removeHandler(handler)
    handler = _AgencyHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
