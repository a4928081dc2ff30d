"""Build hook: schemas/ and templates/ live at the top of the repository (by design) and ship
inside the wheel as ``agency/resources/``, where ``agency.config`` finds them.

An editable install (``pip install -e .``) keeps reading them from the checkout.
Everything else about the package is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = ("schemas", "templates")


class BuildWithResources(build_py):
    """build_py, plus a copy of the resource folders into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for name in RESOURCES:
            shutil.copytree(root / name, Path(self.build_lib) / "agency" / "resources" / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithResources})
