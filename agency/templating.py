"""The Jinja2 environment that renders logs, mail and pages from templates/."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ESCAPED_KINDS = (".xml", ".html", ".htm")


def autoescape_for(template_name: str | None) -> bool:
    """Escape XML and HTML templates, named ``x.xml.j2`` / ``x.html.j2``; never plain text ones.

    Jinja's ``select_autoescape`` looks only at the last extension (``.j2``), which
    would leave logs and pages unescaped: a ``<`` in a DOI would break the log.
    """
    if not template_name:
        return False
    name = template_name[:-3] if template_name.endswith(".j2") else template_name
    return name.endswith(ESCAPED_KINDS)


# How every environment over templates/ renders, the agency's own and Flask's (pages).
TEMPLATE_OPTIONS = {"autoescape": autoescape_for, "trim_blocks": True, "lstrip_blocks": True}


def make_environment(template_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(template_dir)),
        undefined=StrictUndefined,
        **TEMPLATE_OPTIONS,
        keep_trailing_newline=True,
    )
