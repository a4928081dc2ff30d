"""Operating the agency: logging configured in one place, Prometheus metrics, readiness checks.

Imports the foundations and ``runtime`` (job names); the web layer and
the entry points (``cli``, ``wsgi``) call it, the domain packages record
their figures through ``agency.operations.metrics``.
"""
