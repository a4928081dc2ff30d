"""The WSGI entry point for production servers: ``gunicorn 'agency.wsgi:app'``.

Settings come from the ``AGENCY_*`` environment, as everywhere. Each server
worker process imports this module itself, so each gets its own database
pool (do not use gunicorn's ``--preload``: pooled connections must not be
shared across fork). The in-process deposit worker starts only when
``AGENCY_RUN_WORKER`` is on; large sites run ``agency worker`` processes
instead and set it off here.
"""

from __future__ import annotations

from agency.app import create_app
from agency.config import load_settings
from agency.operations.logs import configure_logging
from agency.services import settle_startup_heap

settings = load_settings()
configure_logging(settings.log_format, settings.log_level)
app = create_app(settings, start_background=settings.run_worker)
settle_startup_heap()
