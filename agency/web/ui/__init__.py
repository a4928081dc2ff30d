"""The web interface for people: the home page, registrant pages under /ui/, the staff console under /staff/.

Server-rendered Jinja2 pages (templates/pages/ui/), signed-cookie sessions and
CSRF tokens (Flask-WTF); every page works without JavaScript. Imports the domain
packages and ``web.common``, like every blueprint; nothing imports it but ``app``.
"""

from __future__ import annotations

from flask import Flask

from agency.web.ui import home, registrant, sessions, staff


def register(app: Flask) -> None:
    """Sessions, CSRF and the three blueprints (before the catch-all /{doi} resolver)."""
    sessions.configure(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(registrant.bp)
    app.register_blueprint(staff.bp)
