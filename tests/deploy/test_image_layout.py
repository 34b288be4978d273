"""The image's file layout works: the installed ``bot`` package finds the migrations the
Dockerfile puts beside it, from any working directory.

No Docker engine here, so the test lays out what the final stage holds (the wheel installs
only the ``bot`` package into site-packages) and runs ``troupe db upgrade`` in a process of its
own with that site-packages first on the path, the repository nowhere on it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from bot.storage.migrate import alembic_config
from tests.deploy.dockerfile_model import REPO, Stage, parse_dockerfile


def image_root(tmp_path: Path, final: Stage, *, with_migrations: bool = True) -> Path:
    """A folder standing for ``/``, with site-packages as the final stage lays it out."""
    root = tmp_path / "image"
    site_packages = root / final.variables["SITE_PACKAGES"].lstrip("/")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "bot", site_packages / "bot", ignore=ignore)
    if with_migrations:
        for copy in final.instructions("COPY"):
            if copy.value[0] == "migrations/":
                destination = root / final.expand(copy.value[-1]).lstrip("/")
                shutil.copytree(REPO / "migrations", destination, ignore=ignore)
    (root / "app" / "data").mkdir(parents=True)
    return root


def troupe(root: Path, final: Stage, *args: str) -> subprocess.CompletedProcess[str]:
    """``troupe ARGS`` in ``/app`` with the image's DATABASE_URL (under ``root``)."""
    site_packages = root / final.variables["SITE_PACKAGES"].lstrip("/")
    database_url = final.env["DATABASE_URL"].replace("////app/", f"///{root}/app/")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=root / "app",
        env={"PYTHONPATH": str(site_packages), "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_db_upgrade_finds_the_migrations_beside_the_installed_package(tmp_path: Path) -> None:
    final = parse_dockerfile()[-1]
    root = image_root(tmp_path, final)
    result = troupe(root, final, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "Database is up to date." in result.stdout

    database = root / "app" / "data" / "troupe.sqlite3"
    with sqlite3.connect(database) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {version} == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_without_the_copied_migrations_the_upgrade_fails(tmp_path: Path) -> None:
    # The control: what makes the test above pass is the Dockerfile's COPY, not the checkout.
    final = parse_dockerfile()[-1]
    root = image_root(tmp_path, final, with_migrations=False)
    result = troupe(root, final, "db", "upgrade")
    assert result.returncode != 0
    assert "migrations" in result.stderr
