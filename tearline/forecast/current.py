"""Forecasts from the latest data, kept in the events store, and the alerts they raise.

`tearline forecast run` fits a model on everything known, forecasts horizons 1-6 for every unit,
writes the run to the `forecasts` table and raises an alert for each unit-month whose probability of
an attack reaches the threshold. An analyst turns an alert into a draft warning (`forecast
draft-warning`): the forecast names the threatened place and window and gives a probability, which is
evidence for a warning, not a warning itself, so the draft still needs its author and a second
person's approval.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np

from ..errors import BadRequest, NotFound
from .backtest import HORIZONS, standard_models
from .panel import Panel, month_label

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
    models = {m.name: m for m in standard_models(seed=seed)}
    if name not in models:
        raise BadRequest(f"--model {name!r} is not a model; choose one of {', '.join(models)}")
    return models[name]


def forecast(panel: Panel, model: Any, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng([seed, panel.end])
    preds = model.predict(panel, list(HORIZONS), rng)
    rows = []
    for h, pred in preds.items():
        for u, (iso, province) in enumerate(panel.units):
            rows.append({
                "country": iso, "province": province, "origin": month_label(panel.end),
                "target": month_label(panel.end + h), "horizon": h, "probability": round(float(pred.p[u]), 4),
                "events_mean": round(float(pred.counts[u].mean()), 3),
                "events_q90": float(np.quantile(pred.counts[u], 0.9)),
                "fatalities_mean": round(float(pred.fatalities[u].mean()), 2),
                "fatalities_q90": float(np.quantile(pred.fatalities[u], 0.9)),
            })
    return rows


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
    con.execute(SCHEMA)
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    rows = con.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM forecast_alerts {where} "
                       "ORDER BY raised_at DESC, probability DESC", params).fetchall()
    return [dict(zip(ALERT_COLUMNS, r, strict=True)) | {"raised_at": str(r[2])} for r in rows]


def draft_warning(con: duckdb.DuckDBPyConnection, alert_id: str) -> dict[str, Any]:
    """The fields of a duty-to-warn draft taken from an alert; the alert is marked as drafted."""
    found = [a for a in alerts(con) if a["alert_id"] == alert_id]
    if not found:
        raise NotFound(f"no forecast alert {alert_id!r}; `tearline forecast alerts` lists them")
    a = found[0]
    year, month = int(a["target"][:4]), int(a["target"][5:])
    last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    place = a["province"] or a["country"]
    con.execute("UPDATE forecast_alerts SET status = 'drafted' WHERE alert_id = ?", [alert_id])
    return {
        "status": "draft",
        "threatened_party": a["country"],
        "target": {"country": a["country"], "province": a["province"]},
        "threat_window": {"start": f"{a['target']}-01", "end": last_day.isoformat()},
        "confidence": round(100 * a["probability"]),
        "actor": a["actor"],
        "basis": (f"forecast {a['model']} (run {a['run_id']}): probability {a['probability']:.0%} of at least "
                  f"one attack by {a['actor']} in {place} in {a['target']}, {a['horizon']} month(s) ahead; "
                  f"alert threshold {a['threshold']:.0%}"),
        "from_alert": alert_id,
    }


def latest_run(con: duckdb.DuckDBPyConnection, actors: Sequence[str], horizon: int = 1, limit: int = 25
               ) -> dict[str, Any] | None:
    """The newest stored run for one of ``actors`` (names, any case): its units ranked by the
    probability of at least one attack at ``horizon``, and its open alerts. Reads only (the hub opens
    the events store read-only, so the CLI can keep writing it)."""
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
    cols = ("country", "province", "target", "probability", "events_mean", "events_q90", "fatalities_mean")
    rows = con.execute(f"SELECT {', '.join(cols)} FROM forecasts WHERE run_id = ? AND horizon = ? "
                       "ORDER BY probability DESC LIMIT ?", [head[0], horizon, limit]).fetchall()
    return {"run_id": head[0], "made_at": str(head[1]), "actor": head[2], "source": head[3], "model": head[4],
            "level": head[5], "horizon": horizon, "rows": [dict(zip(cols, r, strict=True)) for r in rows],
            "alerts": [dict(zip(ALERT_COLUMNS, r, strict=True)) | {"raised_at": str(r[2])} for r in con.execute(
                f"SELECT {', '.join(ALERT_COLUMNS)} FROM forecast_alerts WHERE run_id = ? AND status = 'open' "
                "ORDER BY probability DESC", [head[0]]).fetchall()]}
