"""Deposit: a registrant's batch from intake to its log.

intake (authenticate, limits, spool) -> validation (hardened parse + XSD) ->
extraction (one record per doi_data) -> the handle store -> logs. ``runner`` is
the slice runner the generic worker is handed for deposits. ``resources`` is the
same path for resource-only deposits (doi_resources namespaces, doDOICitUpload):
one record per body item, applied to existing DOIs only.

May import: the foundations (config, db, models, templating), ``accounts``,
``handles`` and ``runtime``. Never ``web``, ``cli``, ``app``, ``services``, ``wsgi``.
"""
