"""Query: Crossref-style piped batch queries answered from the metadata index.

``piped_format`` parses and writes lines, ``keys`` builds look-up keys,
``matcher`` finds candidates in the index, ``scoring`` weighs them (no database), ``jobs`` runs large query files as
submissions.

May import: the foundations, ``accounts``, ``handles``, ``metadata``, ``deposit``
(intake of query files), ``notify`` and ``runtime``. Never the entry points or ``web``.
"""
