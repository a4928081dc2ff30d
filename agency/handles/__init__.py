"""Handles: the DOI and handle store, DOI syntax, and resolution.

The store decides precedence in the database (newer timestamp wins); the
resolver reads it for redirects, the Handle.Net REST API and citations.

May import: the foundations and ``accounts``. Nothing that feeds it (deposits,
metadata, queries) and never ``web``, ``cli``, ``app``, ``services``, ``wsgi``.
"""
