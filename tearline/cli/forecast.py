"""``tearline forecast``: backtests, current forecasts and the alerts they raise, over the events store."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import events, forecast
from ..errors import ConfigError
from ..forecast import charts as plots
from ..forecast import current
from ..forecast import panel as panels
from . import context
from .context import emit, err, out
from .events import ActorOpt, CompactFileOpt, CountryOpt, EventsDbOpt, SourceOpt, catalogue, connect

app = typer.Typer(help="Early-warning forecasts: rolling-origin backtest, current forecasts, alerts.",
                  no_args_is_help=True)

UnitOpt = Annotated[str, typer.Option("--unit", help="'province', 'country' or 'both'")]
TodayOpt = Annotated[str | None, typer.Option(
    "--today", help="the date the data's age is measured against, YYYY-MM-DD (default: today)")]


def _today(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--today: {value!r} is not a date YYYY-MM-DD") from None


def _levels(unit: str) -> list[str]:
    if unit not in ("province", "country", "both"):
        raise ConfigError(f"--unit must be 'province', 'country' or 'both', not {unit!r}")
    return ["country", "province"] if unit == "both" else [unit]


@app.command("backtest")
def forecast_backtest(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    unit: UnitOpt = "both",
    start: Annotated[str, typer.Option("--from", help="first month forecast, YYYY-MM")] = "2012-01",
    end: Annotated[str, typer.Option("--to", help="last month forecast, YYYY-MM")] = "2021-12",
    horizons: Annotated[str, typer.Option(help="months ahead: a range like 1-6 or a list like 1,3")] = "1-6",
    refit_every: Annotated[int, typer.Option(help="refit the fitted models every N months of origins")] = 6,
    seed: Annotated[int, typer.Option(help="seed of every random draw (the run is reproducible)")] = 0,
    charts: Annotated[Path | None, typer.Option(
        help="draw reliability and skill-by-horizon PNGs into this directory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as one JSON list")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Rolling-origin backtest: every model and baseline forecasts each month from the data before it."""
    from rich.progress import Progress

    ctx = context.open(events_db=events_db)
    first = events.month(start, "--from")
    last = events.month(end, "--to")
    wanted = forecast.parse_horizons(horizons)
    if refit_every < 1:
        raise ConfigError(f"--refit-every must be at least 1, got {refit_every}")
    levels = _levels(unit)
    con = connect(ctx)
    with Progress(console=err, transient=True) as progress:
        tasks = {lv: progress.add_task(f"backtest {actor}, {lv}-month", total=None) for lv in levels}

        def step(level: str, done: int, total: int) -> None:
            progress.update(tasks[level], completed=done, total=total)

        rows, raw = forecast.evaluate(con, actor, levels, first, last, country, source, wanted, refit_every,
                                      seed, catalogue(compact_file), step)
    if charts is not None:
        _forecast_charts(charts, rows, raw, wanted)
    if as_json:
        emit(rows)
        return
    for level in levels:
        _backtest_table(level, rows, raw[level][0])


def _backtest_table(level: str, rows: list[dict[str, Any]], panel: Any) -> None:
    table = Table(title=f"{panel.actor}, {level}-month, {panel.source}: {rows[0]['period']['from']} to "
                        f"{rows[0]['period']['to']} (skill vs the best baseline)")
    for col in ("model", "h", "Brier", "skill", "95% interval", "log loss", "AP", "CRPS", "CRPS skill",
                "CRPS fatalities"):
        table.add_column(col, justify="left" if col == "model" else "right", overflow="fold")
    # each reason once, numbered; a cell points at its number rather than repeat a sentence per row
    reasons: dict[str, int] = {}

    def mark(r: dict[str, Any]) -> str:
        return f"[{reasons.setdefault(r['brier_skill_undefined'], len(reasons) + 1)}]"

    for r in (r for r in rows if r["unit"] == level):
        point = mark(r) if r["brier_skill"] is None else f"{r['brier_skill']:+.3f}"
        interval = ("{:+.3f} … {:+.3f}".format(*r["brier_skill_ci"]) if r["brier_skill_ci"]
                    else "reference" if r["model"] == r["baseline"] else "" if r["brier_skill"] is None else mark(r))
        table.add_row(r["model"] + (" (baseline)" if r["kind"] == "baseline" else ""), str(r["horizon"]),
                      f"{r['brier']:.4f}", point, interval,
                      f"{r['log_loss']:.3f}", "" if r["average_precision"] is None else f"{r['average_precision']:.3f}",
                      f"{r['crps']:.3f}", "" if r["crps_skill"] is None else f"{r['crps_skill']:+.3f}",
                      f"{r['crps_fatalities']:.2f}")
    out.print(table)
    for reason, n in reasons.items():
        out.print(f"  [{n}] skill or interval undefined: {reason}", highlight=False)
    for note in panel.notes:
        out.print(f"  [yellow]{note}[/yellow]")


def _forecast_charts(directory: Path, rows: list[dict[str, Any]], raw: dict[str, Any], horizons: list[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for level, (panel, scores) in raw.items():
        slug = f"{panel.actor.lower().replace(' ', '-')}-{level}"
        near = [h for h in horizons if h <= 3] or horizons
        plots.reliability(scores, near, f"{panel.actor}, {level}-month ({panel.source}): reliability, "
                           f"horizons {near[0]}-{near[-1]}", str(directory / f"{slug}-reliability.png"))
        plots.skill_by_horizon([r for r in rows if r["unit"] == level],
                                f"{panel.actor}, {level}-month ({panel.source}): skill by horizon",
                                str(directory / f"{slug}-skill.png"))
        err.print(f"charts: {directory / slug}-reliability.png, {directory / slug}-skill.png")


@app.command("run")
def forecast_run(
    actor: ActorOpt,
    country: CountryOpt = None,
    source: SourceOpt = None,
    unit: Annotated[str, typer.Option("--unit", help="'province' or 'country'")] = "province",
    model: Annotated[str, typer.Option(help="which model forecasts: boosting or hawkes")] = "boosting",
    threshold: Annotated[float, typer.Option(help="raise an alert at this probability of an attack")] = 0.5,
    map_file: Annotated[Path | None, typer.Option("--map", help="draw next month's probabilities to this PNG")] = None,
    seed: Annotated[int, typer.Option(help="seed of the predictive samples")] = 0,
    today: TodayOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the forecasts and alerts as JSON")] = False,
    compact_file: CompactFileOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Forecast horizons 1-6 from all the data, store them, and raise alerts above the threshold."""
    ctx = context.open(events_db=events_db)
    if unit not in ("province", "country"):
        raise ConfigError(f"--unit must be 'province' or 'country', not {unit!r}")
    when = _today(today)
    chosen = current.model_named(model, seed)
    con = connect(ctx)
    panel = panels.build(con, actor, unit, country, source, catalogue(compact_file))
    made = current.make(panel, chosen, seed, when)
    rows, fresh = made.rows, made.freshness
    run_id, raised = current.record(con, panel, model, rows, threshold)
    if map_file is not None:
        first = [r for r in rows if r["horizon"] == 1]
        drawn = [u for u in panel.units if any((r["country"], r["province"]) == u for r in first)]
        age = f"; STALE: data {fresh['months_since_data_end']} months old" if fresh["stale"] else ""
        missing = plots.forecast_map(drawn, [r["probability"] for r in first],
                                      f"{panel.actor}: probability of at least one attack in {first[0]['target']} "
                                      f"({model}, data to {first[0]['origin']}, {panel.source}{age})", str(map_file))
        err.print(f"map: {map_file}" + (f" (no boundary for {', '.join(missing)})" if missing else ""))
    if as_json:
        if fresh["stale"]:
            err.print(f"[bold red]STALE:[/bold red] {fresh['stale_reason']}", highlight=False)
        emit({"run_id": run_id, "actor": panel.actor, "source": panel.source, "model": model, **made.summary(),
              "forecasts": rows, "alerts": raised})
        return
    if fresh["stale"]:
        out.print(f"[bold red]STALE:[/bold red] {fresh['stale_reason']}.", highlight=False)
    ahead = fresh["months_until_forecast_month"]
    out.print(f"Data to {fresh['data_end']}; +1 is {fresh['forecast_month']}, "
              + (f"{-ahead} month(s) ago" if ahead < 0 else "this month" if ahead == 0 else f"in {ahead} month(s)")
              + f" (today is {fresh['today']}).", highlight=False)
    table = Table(title=f"{panel.actor}: forecasts from data to {panels.month_label(panel.end)} "
                        f"({model}, {panel.source})")
    for col in ("unit", *(f"+{h}" for h in range(1, 7))):
        table.add_column(col, justify="left" if col == "unit" else "right", overflow="fold")
    for u, label in enumerate(panel.unit_label(i) for i in range(len(panel.units))):
        cells = sorted((r for r in rows if (r["country"], r["province"]) == panel.units[u]), key=lambda r: r["horizon"])
        if cells:  # a retired unit has none
            table.add_row(label, *(current.percent(r["probability"]) for r in cells))
    out.print(table)
    for note in made.notes:
        out.print(f"  [yellow]{note}[/yellow]", highlight=False)
    out.print(f"run {run_id}: {len(raised)} alert(s) at or above {threshold:.0%}; "
              "`tearline forecast alerts` lists them" + (" (all from stale data)" if raised and fresh["stale"] else ""))


@app.command("alerts")
def forecast_alerts(
    status: Annotated[str | None, typer.Option(help="only 'open' or 'drafted' alerts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the alerts as one JSON list")] = False,
    events_db: EventsDbOpt = None,
) -> None:
    """Alerts raised by forecasts that crossed their threshold."""
    ctx = context.open(events_db=events_db)
    if status not in (None, "open", "drafted"):
        raise ConfigError(f"--status must be 'open' or 'drafted', not {status!r}")
    context.listing(current.alerts(connect(ctx), status), as_json, "forecast alerts",
                    ("alert", "status", "actor", "where", "month", "h", "probability", "model", "data to"),
                    lambda a: (a["alert_id"], a["status"], a["actor"], a["province"] or a["country"], a["target"],
                               str(a["horizon"]), current.percent(a["probability"]), a["model"],
                               a["data_end"] or ""))


@app.command("draft-warning")
def forecast_draft_warning(
    alert_id: Annotated[str, typer.Argument(help="an alert id from `tearline forecast alerts`")],
    today: TodayOpt = None,
    events_db: EventsDbOpt = None,
) -> None:
    """Turn an alert into the fields of a draft duty-to-warn warning (printed as JSON)."""
    when = _today(today)
    draft = current.draft_warning(connect(context.open(events_db=events_db)), alert_id, when)
    if draft["stale"]:
        err.print(f"[bold red]STALE:[/bold red] {draft['stale_reason']}", highlight=False)
    sys.stdout.write(json.dumps(draft, indent=1) + "\n")
