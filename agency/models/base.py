"""The declarative base every table derives from.

It lives with the models, not in ``db``, so the tables import nothing above them
and ``db`` can import the models (to create them) without a cycle.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every table the agency keeps."""
