"""Forecasts from the latest data, kept in the events store, and the alerts they raise.

`tearline forecast run` fits a model on everything known, forecasts horizons 1-6 for every unit,
writes the run to the `forecasts` table and raises an alert for each unit-month whose probability of
an attack reaches the threshold. An analyst turns an alert into a draft warning (`forecast
draft-warning`): the forecast names the threatened place and window and gives a probability, which is
evidence for a warning, not a warning itself, so the draft still needs its author and a second
person's approval.

"Next month" is the month after the data ends, however long ago that was: every run, alert, draft
and dashboard page states the data's end and how far the forecast month is from today, and says
plainly when the data is stale (``freshness``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from ..errors import BadRequest, NotFound, TearlineError
from . import freshness
from .backtest import HORIZONS, standard_models
from .panel import RETIRED, Panel, month_label

SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    run_id      VARCHAR NOT NULL,
    made_at     TIMESTAMP NOT NULL,
    actor       VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    model       VARCHAR NOT NULL,
    level       VARCHAR NOT NULL,
    country     VARCHAR NOT NULL,
    province    VARCHAR,
    origin      VARCHAR NOT NULL,    -- last month of data the forecast saw (YYYY-MM)
    target      VARCHAR NOT NULL,    -- the month forecast
    horizon     INTEGER NOT NULL,
    probability DOUBLE NOT NULL,     -- of at least one attack
    events_mean DOUBLE NOT NULL,
    events_q90  DOUBLE NOT NULL,
    fatalities_mean DOUBLE NOT NULL,
    fatalities_q90  DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS forecast_alerts (
    alert_id    VARCHAR PRIMARY KEY,
    run_id      VARCHAR NOT NULL,
    raised_at   TIMESTAMP NOT NULL,
    actor       VARCHAR NOT NULL,
    country     VARCHAR NOT NULL,
    province    VARCHAR,
    target      VARCHAR NOT NULL,
    horizon     INTEGER NOT NULL,
    probability DOUBLE NOT NULL,
    threshold   DOUBLE NOT NULL,
    model       VARCHAR NOT NULL,
    status      VARCHAR NOT NULL     -- open, or drafted once turned into a draft warning
);
"""


def model_named(name: str, seed: int = 0) -> Any:
    """A model to forecast with: a fitted one. The baselines are what a model must beat in a backtest,
    not forecasts to issue: no-change says 0 or 1, climatology says 1 for a unit active in each of its
    36 months and 0 for one quiet in all of them, recent-rate 0 for a unit never struck."""
    models = {m.name: m for m in standard_models(seed=seed)}
    fitted = [n for n, m in models.items() if m.kind == "model"]
    if name in models and name not in fitted:
        raise BadRequest(f"--model {name!r} is a baseline, to be beaten in `forecast backtest`, not to forecast "
                         f"with (its probabilities can be exactly 0 or 1); choose one of {', '.join(fitted)}")
    if name not in models:
        raise BadRequest(f"--model {name!r} is not a model; choose one of {', '.join(fitted)}")
    return models[name]


def probability(p: float) -> float:
    """p rounded for storage and display: four decimals, or, nearer to 0 or 1 than that, two
    significant digits of the distance, so that rounding never turns a probability into 0 or 1."""
    p = float(p)
    if not 0.0 < p < 1.0:  # the models guarantee it: a breach is a bug, not a forecast to store
        raise TearlineError(f"a forecast probability must lie strictly between 0 and 1, not {p}")
    r = round(p, 4)
    if r <= 0.0:
        return float(f"{p:.2g}")
    if r >= 1.0:
        return 1.0 - float(f"{1.0 - p:.2g}")
    return r


def percent(p: float) -> str:
    """A probability as a reader sees it: whole percents, '<1%' and '>99%' at the ends rather than
    '0%' and '100%', which no forecast from finite data can mean."""
    if p < 0.005:
        return "<1%"
    if p >= 0.995:
        return ">99%"
    return f"{p:.0%}"


def decimal(p: float) -> str:
    """A probability with two decimals (the dashboard's way), '<0.01' and '>0.99' at the ends."""
    if p < 0.005:
        return "<0.01"
    if p >= 0.995:
        return ">0.99"
    return f"{p:.2f}"


@dataclasses.dataclass(frozen=True)
class Run:
    """A forecast run before it is stored: the rows (one per forecast unit and horizon), what a reader
    must know about how they were made, and how old the data is."""

    rows: list[dict[str, Any]]
    notes: tuple[str, ...]
    freshness: dict[str, Any]
    history_months: int

    def summary(self) -> dict[str, Any]:
        return {**self.freshness, "history_months": self.history_months, "notes": list(self.notes)}


def make(panel: Panel, model: Any, seed: int = 0, today: dt.date | None = None) -> Run:
    """Forecast horizons 1-6 for every unit of the panel that still exists (``panel.retired`` are
    left out, with the reason in the notes), from the end of the data, and measure the data's age
    against ``today`` (default: the real date)."""
    rng = np.random.default_rng([seed, panel.end])
    preds = model.predict(panel, list(HORIZONS), rng)
    left_out = {u for u, _ in panel.retired}
    rows = []
    for h, pred in preds.items():
        for u, (iso, province) in enumerate(panel.units):
            if u in left_out:
                continue
            rows.append({
                "country": iso, "province": province, "origin": month_label(panel.end),
                "target": month_label(panel.end + h), "horizon": h, "probability": probability(pred.p[u]),
                "events_mean": round(float(pred.counts[u].mean()), 3),
                "events_q90": float(np.quantile(pred.counts[u], 0.9)),
                "fatalities_mean": round(float(pred.fatalities[u].mean()), 2),
                "fatalities_q90": float(np.quantile(pred.fatalities[u], 0.9)),
            })
    by_note: dict[str, list[int]] = {}
    for h, pred in preds.items():
        if pred.note:
            by_note.setdefault(pred.note, []).append(h)
    notes = (*panel.notes, *(f"horizon{'s' if len(hs) > 1 else ''} {', '.join(map(str, hs))}: {note}"
                             for note, hs in by_note.items()))
    fresh = freshness.assess(month_label(panel.end), month_label(panel.end + 1), today)
    return Run(rows, notes, fresh, panel.months)


def forecast(panel: Panel, model: Any, seed: int = 0) -> list[dict[str, Any]]:
    """The rows of ``make``."""
    return make(panel, model, seed).rows


def record(con: duckdb.DuckDBPyConnection, panel: Panel, model_name: str, rows: list[dict[str, Any]],
           threshold: float, now: dt.datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Write the run and its alerts in one transaction; returns the run id and the alerts raised."""
    if not 0.0 < threshold <= 1.0:
        raise BadRequest(f"--threshold must be a probability in (0, 1], got {threshold}")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = hashlib.sha256(json.dumps([panel.actor, panel.source, panel.level, model_name, now.isoformat(), rows],
                                       default=str).encode()).hexdigest()[:16]
    alerts = []
    for r in rows:
        if r["probability"] >= threshold:
            key = json.dumps([panel.actor, r["country"], r["province"], r["target"], r["horizon"], run_id])
            alerts.append(r | {"alert_id": "fa-" + hashlib.sha256(key.encode()).hexdigest()[:12],
                               "actor": panel.actor, "threshold": threshold, "model": model_name})
    con.execute(SCHEMA)
    con.execute("BEGIN")
    try:
        con.executemany(
            "INSERT INTO forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[run_id, now, panel.actor, panel.source, model_name, panel.level, r["country"], r["province"],
              r["origin"], r["target"], r["horizon"], r["probability"], r["events_mean"], r["events_q90"],
              r["fatalities_mean"], r["fatalities_q90"]] for r in rows])
        if alerts:
            con.executemany(
                "INSERT INTO forecast_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                [[a["alert_id"], run_id, now, a["actor"], a["country"], a["province"], a["target"], a["horizon"],
                  a["probability"], threshold, model_name] for a in alerts])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return run_id, alerts


ALERT_COLUMNS = ("alert_id", "run_id", "raised_at", "actor", "country", "province", "target", "horizon",
                 "probability", "threshold", "model", "status")


def alerts(con: duckdb.DuckDBPyConnection, status: str | None = None) -> list[dict[str, Any]]:
    """Alerts, newest first, each with ``data_end``: the last month of data its run saw."""
    con.execute(SCHEMA)
    where, params = ("WHERE a.status = ?", [status]) if status else ("", [])
    rows = con.execute(f"SELECT {', '.join('a.' + c for c in ALERT_COLUMNS)}, f.data_end FROM forecast_alerts a "
                       "LEFT JOIN (SELECT run_id, max(origin) AS data_end FROM forecasts GROUP BY run_id) f "
                       f"ON f.run_id = a.run_id {where} ORDER BY a.raised_at DESC, a.probability DESC",
                       params).fetchall()
    return [dict(zip((*ALERT_COLUMNS, "data_end"), r, strict=True)) | {"raised_at": str(r[2])} for r in rows]


def draft_warning(con: duckdb.DuckDBPyConnection, alert_id: str, today: dt.date | None = None) -> dict[str, Any]:
    """The fields of a duty-to-warn draft taken from an alert; the alert is marked as drafted. The
    draft carries the forecast's freshness against ``today`` (default: the real date), and a draft
    from stale data says so at the head of its basis, where whoever approves it reads."""
    found = [a for a in alerts(con) if a["alert_id"] == alert_id]
    if not found:
        raise NotFound(f"no forecast alert {alert_id!r}; `tearline forecast alerts` lists them")
    a = found[0]
    year, month = int(a["target"][:4]), int(a["target"][5:])
    last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    place = a["province"] or a["country"]
    # an alert whose run is gone has no data end to show: its target less its horizon is the same month
    data_end = a["data_end"] or month_label(freshness.month_of(a["target"]) - a["horizon"])
    fresh = freshness.assess(data_end, a["target"], today)
    basis = (f"forecast {a['model']} (run {a['run_id']}) from data to {data_end}: probability "
             f"{percent(a['probability'])} of at least one attack by {a['actor']} in {place} in {a['target']}, "
             f"{a['horizon']} month(s) after the data ends; alert threshold {a['threshold']:.0%}")
    if fresh["stale"]:
        basis = f"STALE DATA: {fresh['stale_reason']}. {basis}"
    con.execute("UPDATE forecast_alerts SET status = 'drafted' WHERE alert_id = ?", [alert_id])
    return {
        "status": "draft",
        "threatened_party": a["country"],
        "target": {"country": a["country"], "province": a["province"]},
        "threat_window": {"start": f"{a['target']}-01", "end": last_day.isoformat()},
        # whole percents; a forecast from finite data claims neither certainty (100) nor none (0)
        "confidence": min(99, max(1, round(100 * a["probability"]))),
        "actor": a["actor"],
        "basis": basis,
        "from_alert": alert_id,
        **fresh,
    }


def latest_run(con: duckdb.DuckDBPyConnection, actors: Sequence[str], horizon: int = 1, limit: int = 25,
               today: dt.date | None = None) -> dict[str, Any] | None:
    """The newest stored run for one of ``actors`` (names, any case): its units ranked by the
    probability of at least one attack at ``horizon``, its open alerts, and its freshness against
    ``today`` (default: the real date). Reads only (the hub opens the events store read-only, so the
    CLI can keep writing it)."""
    wanted = [a.lower() for a in actors]
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not wanted or not {"forecasts", "forecast_alerts"} <= tables:
        return None
    marks = ", ".join("?" for _ in wanted)
    head = con.execute("SELECT run_id, made_at, actor, source, model, level FROM forecasts "
                       f"WHERE lower(actor) IN ({marks}) "
                       "ORDER BY made_at DESC LIMIT 1", wanted).fetchone()
    if head is None:
        return None
    data_end = con.execute("SELECT max(origin) FROM forecasts WHERE run_id = ?", [head[0]]).fetchone()[0]
    cols = ("country", "province", "target", "probability", "events_mean", "events_q90", "fatalities_mean")
    rows = [dict(zip(cols, r, strict=True)) for r in con.execute(
        f"SELECT {', '.join(cols)} FROM forecasts WHERE run_id = ? AND horizon = ? "
        "ORDER BY probability DESC LIMIT ?", [head[0], horizon, limit]).fetchall()]
    for r in rows:
        r["shown"] = decimal(r["probability"])
        if (r["country"], r["province"]) in RETIRED:
            (year, month), what = RETIRED[(r["country"], r["province"])]
            r["note"] = f"{what} in {year:04d}-{month:02d}; forecast as the former province, as the data names it"
    target = month_label(freshness.month_of(data_end) + horizon)
    return {"run_id": head[0], "made_at": str(head[1]), "actor": head[2], "source": head[3], "model": head[4],
            "level": head[5], "horizon": horizon, "rows": rows,
            "freshness": freshness.assess(data_end, target, today),
            "alerts": [dict(zip(ALERT_COLUMNS, r, strict=True)) | {"raised_at": str(r[2]), "shown": decimal(r[8])}
                       for r in con.execute(
                f"SELECT {', '.join(ALERT_COLUMNS)} FROM forecast_alerts WHERE run_id = ? AND status = 'open' "
                "ORDER BY probability DESC", [head[0]]).fetchall()]}
