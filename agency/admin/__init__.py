"""Administration: what RA staff and registrants change about who owns what (Handbook 9.1.5, 9.1.6).

Prefixes, title records, transfers, aliases, corrections, export and import, and
the audit trail every such change writes in its own transaction. Keeping records
right: ``url_updates`` (bulk DOI<TAB>URL files, a worker runner), ``aliases``
(HS_ALIAS, forced-aliasing files), ``withdrawals`` (tombstones), ``versions``
(version resets) and ``reports`` (the streamed depositor report).

May import: the foundations, ``accounts``, ``handles``, ``deposit``, ``metadata``,
``notify``, ``query`` (its line reader for text files) and ``runtime``. Never ``web``, ``cli``, ``app``, ``services``, ``wsgi``.
"""
