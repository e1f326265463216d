"""Early warning: forecasts of an actor's attacks per country-month and province-month, evaluated
out of sample by rolling origin against naive baselines.

``panel`` builds the unit-month panel from the events store; ``baselines``, ``boosting`` and
``hawkes`` are the models; ``backtest`` runs and scores the rolling origin; ``charts`` draws it;
``current`` makes today's forecasts and raises alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from ..errors import BadRequest
from ..events import actors
from . import backtest as _backtest
from . import panel as _panel


def parse_horizons(text: str) -> list[int]:
    """'1-6', '1,2,3' or '3' → horizons, each between 1 and 12."""
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            values = list(range(lo, hi + 1))
        else:
            values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise BadRequest(f"--horizons {text!r}: expected a range like 1-6 or a list like 1,2,3") from None
    if not values or values[0] < 1 or values[-1] > 12:
        raise BadRequest(f"--horizons {text!r}: horizons run from 1 to 12 months")
    return values


def evaluate(con: duckdb.DuckDBPyConnection, actor: str, levels: Sequence[str], first: tuple[int, int],
             last: tuple[int, int], country: str | None = None, source: str | None = None,
             horizons: Sequence[int] = _backtest.HORIZONS, refit_every: int = _backtest.REFIT_EVERY, seed: int = 0,
             catalogue: tuple[actors.Actor, ...] = actors.CATALOGUE,
             progress: Callable[[str, int, int], Any] | None = None,
             ) -> tuple[list[dict[str, Any]], dict[str, tuple[_panel.Panel, dict]]]:
    """Rows for every level, model and horizon, and per level the panel and raw scores (for charts)."""
    if first > last:
        raise BadRequest("--from must not be after --to")
    rows: list[dict[str, Any]] = []
    raw: dict[str, tuple[_panel.Panel, dict]] = {}
    for level in levels:
        panel = _panel.build(con, actor, level, country, source, catalogue)
        models = _backtest.standard_models(refit_every=refit_every, seed=seed)
        scores = _backtest.run(panel, _panel.month_index(*first), _panel.month_index(*last), horizons, models, seed,
                               (lambda done, total, lv=level: progress(lv, done, total)) if progress else None)
        found = _backtest.summarise(scores, {m.name: m.kind for m in models}, level, seed)
        if not found:
            raise BadRequest(f"no months to evaluate: {actor} has data from {_panel.month_label(panel.start)} to "
                             f"{_panel.month_label(panel.end)} in {panel.source}")
        span = _backtest.period(panel, _panel.month_index(*first), _panel.month_index(*last))
        for r in found:
            r.update(actor=panel.actor, source=panel.source, period=span)
        rows += found
        raw[level] = (panel, scores)
    return rows, raw
