"""The import rules that keep agency's layout honest, read from the source with ``ast``.

Units are agency's top-level modules and packages (``agency.deposit``, ``agency.db``...).
Foundations sit at the bottom, domain packages in the middle, the composition root,
entry points and ``web`` on top. Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "agency"
FOUNDATIONS = {"config", "db", "templating", "models"}
ENTRY_POINTS = {"services", "app", "cli", "wsgi"}
WEB = {"web"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every agency module the file imports, absolute names, relative imports resolved."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "agency" or m.startswith("agency.")}


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    unit = parts[1]
    return unit if (PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file() else None


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in source_files():
        unit = unit_of(module_name(path))
        if unit is None:
            continue
        targets = {unit_of(m) for m in imported_modules(path)} - {None, unit}
        graph.setdefault(unit, set()).update(targets)  # type: ignore[arg-type]
    return graph


def test_the_package_is_laid_out_by_domain():
    """No flat soup: beside the foundations, entry points and a few domain modules, code lives in packages."""
    top_modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_modules <= FOUNDATIONS | ENTRY_POINTS | {"accounts", "sign_in"}, sorted(top_modules)
    for package in ("deposit", "handles", "metadata", "query", "notify", "runtime", "web", "models"):
        init = PACKAGE / package / "__init__.py"
        assert init.is_file(), package
        assert ast.get_docstring(ast.parse(init.read_text())), f"{package}/__init__.py says what the domain is"


def test_foundations_import_only_foundations():
    graph = unit_graph()
    for unit in FOUNDATIONS:
        assert graph.get(unit, set()) <= FOUNDATIONS, (unit, graph.get(unit))


def test_domain_packages_never_import_entry_points_or_web():
    graph = unit_graph()
    for unit, targets in graph.items():
        if unit in FOUNDATIONS | ENTRY_POINTS | WEB:
            continue
        assert not targets & (ENTRY_POINTS | WEB), (unit, targets & (ENTRY_POINTS | WEB))


def test_web_never_imports_the_cli():
    assert "cli" not in unit_graph().get("web", set())


def test_no_import_cycle_between_units():
    graph = unit_graph()
    state: dict[str, int] = {}

    def visit(unit: str, trail: list[str]) -> None:
        state[unit] = 1
        for target in sorted(graph.get(unit, ())):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(target):] + [target]))
            if target not in state:
                visit(target, trail + [target])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])


def test_the_worker_knows_no_domain():
    """Runners are handed to the generic worker; it imports no deposit or query code."""
    units = {unit_of(m) for m in imported_modules(PACKAGE / "runtime" / "worker.py")}
    assert units <= FOUNDATIONS | {None, "runtime"}, units


def test_sign_in_knows_no_agency_module_and_no_web_framework():
    """The guard is shared by every sign-in path (web, Handle protocol): nothing of agency, no Flask."""
    source = (PACKAGE / "sign_in.py").read_text()
    assert not imported_modules(PACKAGE / "sign_in.py")
    assert "flask" not in source.lower() and "werkzeug" not in source.lower()


def test_the_rules_see_a_violation(tmp_path, monkeypatch):
    """The reader resolves relative and in-function imports (else the rules above could pass vacuously)."""
    fake = tmp_path / "agency"
    (fake / "deposit").mkdir(parents=True)
    (fake / "deposit" / "__init__.py").write_text("")
    (fake / "deposit" / "runner.py").write_text("def f():\n    from ..web import pages\n    import agency.cli\n")
    (fake / "web").mkdir()
    (fake / "web" / "__init__.py").write_text("")
    (fake / "cli.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imported_modules(fake / "deposit" / "runner.py") >= {"agency.web", "agency.web.pages", "agency.cli"}
    assert unit_graph()["deposit"] == {"web", "cli"}
