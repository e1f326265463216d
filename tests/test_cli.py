"""The command line as a whole: every command answers --help, a TearlineError raised anywhere below the
root (a sub-group's command, a sub-sub-group's) ends as one line and the right exit code, and settings
reach the commands only through tearline.config."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import tearline
from tearline import config
from tearline.audit import latest
from tearline.cli import app, guard
from tearline.errors import ConfigError, NotFound, TearlineError
from tearline.store import Store

ROOT = Path(tearline.__file__).resolve().parent


def _paths(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(cmd, "list_commands"):  # the root group loads its groups when asked for them
        for name in cmd.list_commands(None):
            found += _paths(cmd.get_command(None, name), (*path, name))
    return found


PATHS = _paths(typer.main.get_command(app))


def test_the_command_tree_is_whole() -> None:
    groups = {p for p in PATHS if len(p) == 1}
    assert groups == {(g,) for g in ("serve", "demo", "compact", "db", "events", "forecast", "audit", "guard", "leak",
                                     "warn", "match", "misp", "peer")}
    assert ("warn", "party", "add") in PATHS and ("misp", "pull") in PATHS and len(PATHS) == 66


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "tearline")
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    done = CliRunner().invoke(app, [*path, "--help"])
    assert done.exit_code == 0, done.output
    assert "Usage:" in done.stdout


def test_an_error_in_a_sub_sub_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # a real process, as a user runs it: `warn party add` is two groups down
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    done = subprocess.run([sys.executable, "-m", "tearline", "warn", "party", "add", "Ministry", "--public-key", "zz",
                           "--db", db], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_a_refused_step_is_still_audited(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    Store(db).migrate()
    refused = CliRunner().invoke(app, ["warn", "approve", "no-such-warning", "--by", "alice", "--db", db])
    assert refused.exit_code == 2 and refused.stderr.startswith("error: "), refused.output
    store = Store(db)
    entry = latest(store, 1)[0]
    store.close()
    assert entry["path"] == "tearline warn approve" and entry["status"] == NotFound.status


@pytest.mark.parametrize(("exc", "code"), [(ConfigError("bad flag"), 2), (NotFound("no such thing"), 2),
                                           (TearlineError("the hub broke"), 1)])
def test_the_exit_code_follows_the_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: TearlineError,
                                         code: int) -> None:
    def scan(_store: Any) -> list[Any]:
        raise exc

    monkeypatch.setattr(guard.probes, "scan", scan)
    Store(f"sqlite:///{tmp_path / 'hub.db'}").migrate()
    done = CliRunner().invoke(app, ["guard", "scan", "--db", f"sqlite:///{tmp_path / 'hub.db'}"])
    assert done.exit_code == code
    assert done.stderr == f"error: {exc.description}\n"


def test_usage_errors_and_bad_parameters_stay_clicks() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["events", "trend", "--actor", "X", "--from", "2012-01", "--to", "2012-02",
                              "--country", "ZZZZ"])
    assert bad.exit_code == 2 and "is not an ISO 3166 alpha-3 code" in bad.stderr
    assert "error:" not in bad.stderr
    unknown = runner.invoke(app, ["warn", "party", "bogus"])
    assert unknown.exit_code == 2 and "No such command" in unknown.stderr


def test_settings_of_a_member_and_of_the_events_store_come_from_config() -> None:
    env = {"TEARLINE_MEMBER": "ngo-c", "TEARLINE_TOKEN": "t0k", "TEARLINE_HUB": "https://hub.example",
           "TEARLINE_MATCH_STATE": "/tmp/state", "TEARLINE_EVENTS_DB": "e.duckdb"}
    settings = config.load({"member": None, "hub": "http://flag"}, env)
    assert (settings.member, settings.token, settings.hub, settings.match_state, settings.events_db) == (
        "ngo-c", "t0k", "http://flag", "/tmp/state", "e.duckdb")
    defaults = config.load({}, {})
    assert (defaults.member, defaults.token, defaults.hub, defaults.match_state) == ("", "", "http://127.0.0.1:6100", "")


def test_a_member_without_credentials_is_told_which_settings_are_missing() -> None:
    done = CliRunner(env={"TEARLINE_MEMBER": None, "TEARLINE_TOKEN": None}).invoke(app, ["match", "inbox"])
    assert done.exit_code == 2
    assert done.stderr == "error: --member and --token (or TEARLINE_MEMBER and TEARLINE_TOKEN) are required\n"


def test_only_config_reads_the_environment() -> None:
    readers = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
               if re.search(r"os\.environ|getenv", p.read_text(encoding="utf-8"))]
    assert readers == ["config.py"]


def _imported(node: ast.AST, package: list[str]) -> list[str]:
    """The absolute names an import statement reaches (``from .x import y`` reaches x and x.y)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package[:len(package) - node.level + 1] if node.level else []
    module = ".".join([*base, *(node.module.split(".") if node.module else [])])
    return [module, *(f"{module}.{a.name}" for a in node.names)]


def test_nothing_below_the_cli_imports_it() -> None:
    # the CLI is the top layer; only the entry point (python -m tearline) starts it
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        package = ["tearline", *rel.parent.parts]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            reached = [n for n in _imported(node, package) if n == "tearline.cli" or n.startswith("tearline.cli.")]
            assert not reached, f"{rel} imports {reached}"


def test_serving_loads_neither_duckdb_nor_the_forecasting_stack() -> None:
    # the hub process is `tearline serve`: what the events and forecast commands need stays out of it
    code = ("import sys, typer.main; from tearline.cli import app; "
            "typer.main.get_command(app).get_command(None, 'serve'); "
            "print(sorted(m for m in ('duckdb', 'numpy', 'scipy', 'sklearn', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- every command, fed what a person gets wrong -------------------------------------------------------------

_MAKERS = {("db", "upgrade"), ("compact", "apply"), ("audit", "witness"), ("warn", "keygen"), ("warn", "reply"),
           ("audit", "export"), ("events", "to-stix"), ("misp", "pull")}  # they write what they are asked to
_FILL = {"actor": "ISIS-K", "start": "2023-01", "end": "2023-06", "member": "state-a", "compact": "isis-k",
         "compact_name": "isis-k", "to": "state-b", "country": "AFG", "window_start": "2024-01-01",
         "window_end": "2024-02-01", "confidence": "high", "ask": "x", "by": "state-a/amina", "reason": "x", "why": "x",
         "decision": "approve", "kind": "domain", "public_key": "00" * 32, "hub": "http://127.0.0.1:9",
         "token": "t", "name": "isis-k", "warning": "w1", "alert_id": "a1", "request_id": "r1"}


def _leaves(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if hasattr(cmd, "list_commands"):
        return [leaf for name in cmd.list_commands(None) for leaf in _leaves(cmd.get_command(None, name), (*path, name))]
    return [(path, cmd)]


def _bad_inputs(cmd: Any, work: Path) -> list[list[str]]:
    """The command's required arguments filled in, then each kind of mistake in turn: stores that are
    unreachable, not stores, or not there; event stores that are not DuckDB; files that are missing, are
    directories, or are binary."""
    garbage = work / "garbage.bin"
    text = work / "text.txt"
    files = ["/nonexistent/file.json", str(work / "adir"), str(garbage)]
    fill = _FILL | {"key": str(text), "out_file": str(work / "o.json"), "out_dir": str(work / "od"),
                    "state": str(work / "st"), "file": str(text), "files": str(text)}
    base: list[str] = []
    for p in cmd.params:
        if p.required:
            value = fill.get(p.name, "x")
            base += [value] if p.param_type_name == "argument" else [p.opts[0], value]
    names = {p.name for p in cmd.params}
    variants = [base]
    if "db" in names:
        variants += [base + ["--db", d] for d in ("postgresql+psycopg://nobody@127.0.0.1:9/none", "nonsense://x",
                                                  "sqlite:///", f"sqlite:///{garbage}", "sqlite:////nonexistent/d/x.db")]
    if "events_db" in names:
        variants += [base + ["--events-db", d] for d in (str(garbage), str(text), "/nonexistent/dir/e.duckdb")]
    if "compact_file" in names:
        variants += [base + ["--compact-file", d] for d in [*files, str(text)]]
    for p in cmd.params:
        if p.param_type_name == "argument" and p.name in ("file", "files"):
            variants += [[f if a == str(text) else a for a in base] for f in files]
    return variants


def test_every_command_answers_bad_input_in_one_line_and_read_only_ones_create_nothing(tmp_path: Path,
                                                                                       monkeypatch: Any) -> None:
    """No traceback, ever: a bad store, events store or file is one line on stderr and a non-zero exit. And a
    command that only reads makes no file on the way (no empty tearline.db where a store was expected)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.bin").write_bytes(b"\x00\xffnot json\x89PNG")
    (tmp_path / "text.txt").write_text("hello\n")
    (tmp_path / "adir").mkdir()
    env = {"TEARLINE_DB": None, "TEARLINE_EVENTS_DB": None, "TEARLINE_HUB": None, "TEARLINE_MEMBER": None,
           "TEARLINE_TOKEN": None}
    problems = []
    for path, cmd in _leaves(typer.main.get_command(app)):
        if path in (("serve",), ("demo",)):
            continue  # they run a hub: tests/test_events_tostix.py starts the demo for real
        before = set(tmp_path.iterdir())
        for args in _bad_inputs(cmd, tmp_path):
            done = CliRunner(env=env).invoke(app, [*path, *args])
            crashed = done.exception is not None and not isinstance(done.exception, SystemExit)
            if crashed or "Traceback" in done.output or (done.exit_code == 0 and args != _bad_inputs(cmd, tmp_path)[0]):
                problems.append((" ".join(path), args[-2:], done.exit_code, repr(done.exception), done.output[-200:]))
        made = set(tmp_path.iterdir()) - before
        if made and path not in _MAKERS:
            problems.append((" ".join(path), "made files", sorted(p.name for p in made)))
        for p in made:
            if p.is_file():
                p.unlink()
    assert not problems, "\n".join(map(str, problems))


def _readme_commands() -> list[tuple[int, list[str]]]:
    """Every `tearline …` command line the README shows (code blocks and inline code), as tokens."""
    text = (ROOT.parent / "README.md").read_text()
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        for part in re.findall(r"`(tearline [^`]+)`", line) or ([line.split("#", 1)[0]] if "tearline " in line else []):
            start = part.find("tearline ")
            if start < 0 or "/" in part[start - 1:start] or "tearline/" in part[start:start + 9]:
                continue
            words = re.split(r"\s+", part[start:].split("|")[0].replace("\\", " ").strip())
            found.append((n, words[1:]))
    return found


def test_every_command_and_flag_the_readme_names_exists() -> None:
    root = typer.main.get_command(app)
    problems = []
    for line, words in _readme_commands():
        cmd, path = root, []
        for w in words:
            sub = cmd.get_command(None, w) if hasattr(cmd, "get_command") and not w.startswith("-") else None
            if sub is None:
                break
            cmd, path = sub, [*path, w]
        if not path:
            problems.append(f"README line {line}: `tearline {' '.join(words[:2])}` is no command")
            continue
        flags = {o for p in getattr(cmd, "params", []) for o in [*p.opts, *p.secondary_opts]} | {"--help"}
        for w in words:
            flag = w.strip("[]").split("=")[0]
            if flag.startswith("--") and flag not in flags:
                problems.append(f"README line {line}: `tearline {' '.join(path)}` has no {flag}")
    every = {o for _, cmd in _leaves(root) for p in cmd.params for o in [*p.opts, *p.secondary_opts]}
    text = (ROOT.parent / "README.md").read_text()
    for line, row in enumerate(text.splitlines(), 1):
        for flag in re.findall(r"`(--[a-z][a-z0-9-]*)`", row) + re.findall(r"`(--[a-z][a-z0-9-]*)/", row):
            if flag not in every:
                problems.append(f"README line {line}: {flag} is a flag of no command")
    assert len(_readme_commands()) > 50 and not problems, "\n".join(problems)


def test_serve_on_a_busy_port_says_so_before_anything_else(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tearline", "serve", "--port", str(port), "--db",
                               f"sqlite:///{tmp_path / 'hub.db'}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Tearline hub on" not in done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
