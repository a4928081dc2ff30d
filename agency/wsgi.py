"""The WSGI entry point for production servers: ``gunicorn 'agency.wsgi:app'``.

Settings come from the ``AGENCY_*`` environment, as everywhere. Each server
worker process imports this module itself, so each gets its own database
pool (do not use gunicorn's ``--preload``: pooled connections must not be
shared across fork). Web processes serve requests only: deposits are run and
the scheduled jobs kept by ``agency worker`` processes beside them, unless
``AGENCY_WSGI_BACKGROUND=1`` asks each web process to run a worker thread and a
scheduler too (the scheduler lease still lets only one of them run the jobs).
"""

from __future__ import annotations

import logging
import sys

from agency.app import create_app
from agency.config import SettingError, load_settings, unknown_variables
from agency.operations.logs import configure_logging
from agency.services import settle_startup_heap

try:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
except SettingError as exc:  # one line naming the variable, not a traceback in every server process
    print(f"agency: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None
for warning in unknown_variables():
    logging.getLogger("agency.config").warning("%s", warning)
if not settings.wsgi_background:
    settings = settings.replace(run_worker=False, run_scheduler=False)
app = create_app(settings, start_background=settings.wsgi_background)
settle_startup_heap()
