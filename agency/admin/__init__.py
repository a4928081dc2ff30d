"""Administration: what RA staff and registrants change about who owns what (Handbook 9.1.5, 9.1.6).

Prefixes, title records, transfers, aliases, corrections, export and import, and
the audit trail every such change writes in its own transaction.

May import: the foundations, ``accounts``, ``handles``, ``deposit``, ``metadata``,
``notify`` and ``runtime``. Never ``web``, ``cli``, ``app``, ``services``, ``wsgi``.
"""
