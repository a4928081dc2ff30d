"""Handle.Net's SQL storage tables, ``nas(na)`` and ``handles(handle, idx, type, data, ...)``, as PostgreSQL views
over agency's own tables, so a stock Handle.Net server can serve agency's handles (PostgreSQL only).

The views live in their own schema (``AGENCY_HANDLE_SQL_SCHEMA``, default
``handle_net``) because agency's own table is also called ``handles``; point the
stock server's JDBC URL at that schema (``?currentSchema=handle_net``). Column
types are those of the Handle.Net manual's PostgreSQL tables: handles, types
and prefixes as bytea, data as bytea, times as seconds since 1970. A deposited
DOI's HS_ADMIN, which agency derives instead of storing, is derived in the view
the same way (the owner's admin group, also after a transfer). Handles are ASCII upper case, as a case-insensitive Handle.Net
server looks them up. The views are read-only: writes go through agency.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def storage_view_statements(schema: str, ttl: int) -> list[str]:
    if not _SCHEMA.match(schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters, digits and _")
    ttl = int(ttl)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"""CREATE OR REPLACE VIEW {schema}.nas AS
            SELECT convert_to('0.NA/' || p.prefix, 'UTF8') AS na FROM prefixes p""",
        f"""CREATE OR REPLACE VIEW {schema}.handles AS
            SELECT convert_to(v.handle_key, 'UTF8') AS handle, v.idx AS idx, convert_to(v.type, 'UTF8') AS type,
                   v.data AS data, v.ttl_type::int2 AS ttl_type, v.ttl::int4 AS ttl,
                   floor(extract(epoch FROM v.timestamp))::int4 AS timestamp, v.refs AS refs,
                   v.admin_read AS admin_read, v.admin_write AS admin_write, v.pub_read AS pub_read,
                   v.pub_write AS pub_write
              FROM handle_values v
            UNION ALL
            SELECT convert_to(h.key, 'UTF8'), 100, convert_to('HS_ADMIN', 'UTF8'),
                   '\\x0fff'::bytea || int4send(octet_length(convert_to('0.NA/' || adm.prefix, 'UTF8')))
                       || convert_to('0.NA/' || adm.prefix, 'UTF8') || int4send(200),
                   0::int2, {ttl}::int4, floor(extract(epoch FROM h.created_at))::int4, '', true, true, true, false
              FROM handles h
              -- the owner's admin group, as store.admin_prefix: the handle's own prefix while its owner
              -- holds it, else (a transferred DOI) the owner's first prefix
              CROSS JOIN LATERAL (
                SELECT CASE WHEN EXISTS (SELECT 1 FROM prefixes own
                                          WHERE own.account_id = h.account_id AND own.prefix = h.prefix)
                            THEN h.prefix
                            ELSE coalesce((SELECT own.prefix FROM prefixes own WHERE own.account_id = h.account_id
                                            ORDER BY own.prefix LIMIT 1), h.prefix) END AS prefix) adm
             WHERE NOT EXISTS (SELECT 1 FROM handle_values a
                                WHERE a.handle_key = h.key AND (a.idx = 100 OR a.type = 'HS_ADMIN'))""",
    ]


def create_storage_views(engine: Engine, schema: str, ttl: int) -> None:
    """Create (or replace) the two views; needs PostgreSQL and the agency's tables on the search path."""
    if engine.dialect.name != "postgresql":
        raise RuntimeError("Handle.Net SQL storage views need PostgreSQL (agency's production database)")
    with engine.begin() as connection:
        for statement in storage_view_statements(schema, ttl):
            connection.execute(text(statement))
