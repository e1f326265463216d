"""The architecture's rules, checked mechanically: every module imports on its own, and no module but the
release and write paths (and the store beneath them) reaches the rows members receive — not by import, not
by table name, not by raw SQL."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tearline

ROOT = Path(tearline.__file__).resolve().parent
# the rows a member receives: object versions and what hangs off them, and warnings
MEMBER_TABLES = {"objects", "refs", "recipients", "withheld", "warnings", "warning_events"}
ALLOWED = {"tearline.release", "tearline.write", "tearline.visibility"}
_SQL = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)\s+(" + "|".join(sorted(MEMBER_TABLES)) + r")\b", re.I)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(ROOT)], "tearline.")
                  if ".migrations" not in m.name and not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports_on_its_own(name: str) -> None:
    # a fresh interpreter: an import that works only because another module was imported first fails here
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def _source_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if "migrations" in rel.parts or name.startswith("tearline.store") or name in ALLOWED:
            continue
        out.append((name, path))
    return out


@pytest.mark.parametrize(("name", "path"), _source_modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_other_module_reaches_member_rows_by_name_or_sql(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("store.schema"):
            reached = {a.name for a in node.names} & MEMBER_TABLES
            assert not reached, f"{name} imports the tables {sorted(reached)}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("store"):
            reached = {a.name for a in node.names} & {"objects"}
            assert not reached or name.startswith("tearline.warn"), f"{name} imports tearline.store.objects"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not _SQL.search(node.value), f"{name} holds SQL over a member table: {node.value[:80]!r}"
    if not name.startswith("tearline.warn"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("store"):
                assert "warnings" not in {a.name for a in node.names}, f"{name} imports tearline.store.warnings"


def test_the_web_layer_shows_members_only_what_the_release_module_gives_it() -> None:
    # the operator's whole warning records (tearline.warn.show / list_) never reach a member's answer
    for path in sorted((ROOT / "web").glob("*.py")) + sorted((ROOT / "taxii").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        called = {f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        assert not called & {"warn.show", "warn.list_"}, path.name
