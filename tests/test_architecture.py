"""The architecture's rules, checked mechanically: every module imports on its own, and no module but the
release and write paths (and the store beneath them) reaches the rows members receive — not by import, not
by table name, not by raw SQL."""

from __future__ import annotations

import ast
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
        if "migrations" in rel.parts or name.startswith("tearline.store") or name in ALLOWED \
                or name.startswith(("tearline.release.", "tearline.write.")):  # the gate's and the write path's own
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


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (inside functions too), each by the
    most specific module the statement names: ``from . import x`` is an import of the submodule x, and
    ``from . import NAME`` (anything that is not a submodule) an import of the package itself."""
    known = {n for n, _ in _all_modules()}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found & known - {name}


def _all_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        if "migrations" not in rel.parts:
            out.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return out


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            step = next(targets, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(edges.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_anywhere_in_the_package() -> None:
    # import-linter sees only what grimp resolves; this counts every import statement, the ones inside
    # functions included, and a package __init__ importing its submodules while one imports it back
    edges = {name: _imports(name, path) for name, path in _all_modules()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_lint_is_clean() -> None:
    # the rule set is pyproject.toml's [tool.ruff]
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "tearline", "tests", "bench"], capture_output=True, text=True,
                          cwd=ROOT.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_file_is_over_600_lines() -> None:
    long = {name: n for name, path in _all_modules() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


def test_settings_come_only_from_config() -> None:
    # flags, then TEARLINE_*, then defaults, read once by tearline.config and passed in
    for name, path in _all_modules():
        if name != "tearline.config":
            text = path.read_text(encoding="utf-8")
            assert "os.environ" not in text and "getenv" not in text, name


# what reaches the database (or the disk): called only from plain handlers, which FastAPI runs in its thread
# pool, or handed to run_in_threadpool from an async one
_BLOCKING = {"release", "write", "warn", "probes", "audit", "mailbox", "authenticate", "caller", "store", ".store",
             ".log",
             "_member", "_intel", "_copies", "_seen", "_acknowledge", "_take"}
# pure functions of those modules: shaping data already in memory
_PURE = {"mailbox.max_body", "release.status_resource", "caller.hub", "caller.read_body", "caller.as_json"}


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        if node.attr in ("store", "log"):
            return f".{node.attr}"  # the hub's store or audit log, however it was reached
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _calls_on_the_loop(fn: ast.AsyncFunctionDef) -> list[ast.Call]:
    """The calls an async function makes itself (a plain function defined inside it runs elsewhere)."""
    found, todo = [], list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "web").glob("*.py")), ids=lambda p: p.name)
def test_async_handlers_never_block_the_event_loop(path: Path) -> None:
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        for call in _calls_on_the_loop(fn):
            name = ast.unparse(call.func)
            assert _root_name(call.func) not in _BLOCKING or name in _PURE, \
                f"{path.name}:{call.lineno} {fn.name} calls {name} on the event loop (run it with run_in_threadpool)"


def test_the_event_loop_check_sees_a_blocking_call() -> None:
    bad = ast.parse("async def h(request):\n    hub.store.api_root('x')\n    def later():\n        release.x()\n")
    fn = bad.body[0]
    assert isinstance(fn, ast.AsyncFunctionDef)
    assert [_root_name(c.func) for c in _calls_on_the_loop(fn)] == [".store"]
