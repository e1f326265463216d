"""Rolling-origin evaluation: at every month t the models see ``panel.history(t)`` only, forecast
horizons 1-6, and are scored when the months they forecast are in the evaluation period.

Scores per model, unit level and horizon: Brier score, its skill against the best baseline (the
baseline with the lowest Brier at that horizon) with a 95% interval from an origin-block bootstrap,
log loss, average precision, and CRPS of the predictive distributions of attack counts and
fatalities (properscoring, 1,000 samples for every model) with the skill of the count CRPS against the
baseline with the lowest CRPS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .baselines import Climatology, NoChange, RecentRate
from .boosting import Boosting
from .hawkes import Hawkes
from .panel import Panel, month_label

HORIZONS = (1, 2, 3, 4, 5, 6)
# Probabilities of exactly 0 or 1 (the no-change forecast) make log loss infinite on the first miss;
# they are clipped to this margin for log loss only.
LOG_LOSS_CLIP = 1e-3
BOOTSTRAP = 1000
# Fitted models are refitted every this many months of origins (refitting every month moves the
# scores by less than the bootstrap interval and costs six times as long).
REFIT_EVERY = 6


def standard_models(refit_every: int = REFIT_EVERY, seed: int = 0) -> list[Any]:
    return [Climatology(), NoChange(), RecentRate(), Boosting(refit_every=refit_every, seed=seed),
            Hawkes(refit_every=refit_every)]


@dataclasses.dataclass
class Scores:
    """Per (model, horizon): one row per (origin, unit) with the forecast and the outcome."""

    origin: list[int] = dataclasses.field(default_factory=list)
    p: list[float] = dataclasses.field(default_factory=list)
    occurred: list[int] = dataclasses.field(default_factory=list)
    crps: list[float] = dataclasses.field(default_factory=list)
    crps_fatalities: list[float] = dataclasses.field(default_factory=list)


def run(panel: Panel, first_target: int, last_target: int, horizons: Sequence[int] = HORIZONS,
        models: list[Any] | None = None, seed: int = 0,
        progress: Callable[[int, int], Any] | None = None) -> dict[tuple[str, int], Scores]:
    """Forecast every target month in [first_target, last_target] at every horizon, from origins
    target - h, each seeing only the data up to its own month."""
    import properscoring

    models = models if models is not None else standard_models(seed=seed)
    last_target = min(last_target, panel.end)
    origins = range(max(first_target - max(horizons), panel.start), last_target)
    scores: dict[tuple[str, int], Scores] = {(m.name, h): Scores() for m in models for h in horizons}
    for i, t in enumerate(origins):
        hist = panel.history(t)
        wanted = [h for h in horizons if first_target <= t + h <= last_target]
        for model in models:
            # one stream per (origin, model), so one model's draws never shift another's
            rng = np.random.default_rng([seed, t, sum(map(ord, model.name))])
            for h, pred in model.predict(hist, wanted, rng).items():
                col = t + h - panel.start
                y, f = panel.counts[:, col], panel.fatalities[:, col]
                s = scores[(model.name, h)]
                s.origin += [t] * len(y)
                s.p += list(pred.p)
                s.occurred += list((y > 0).astype(int))
                s.crps += list(properscoring.crps_ensemble(y, pred.counts))
                s.crps_fatalities += list(properscoring.crps_ensemble(f, pred.fatalities))
        if progress:
            progress(i + 1, len(origins))
    return scores


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def _skill_interval(origin: np.ndarray, model: np.ndarray, baseline: np.ndarray, seed: int) -> list[float]:
    """95% interval of 1 - mean(model)/mean(baseline), resampling whole origins (the units of one
    origin share a month and are not independent)."""
    keys, inverse = np.unique(origin, return_inverse=True)
    per_m = np.bincount(inverse, weights=model)
    per_b = np.bincount(inverse, weights=baseline)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, keys.size, size=(BOOTSTRAP, keys.size))
    b = per_b[pick].sum(axis=1)
    skill = 1.0 - per_m[pick].sum(axis=1) / np.where(b > 0, b, np.nan)
    lo, hi = np.nanpercentile(skill, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def summarise(scores: dict[tuple[str, int], Scores], kinds: dict[str, str], level: str, seed: int = 0
              ) -> list[dict[str, Any]]:
    """The JSON rows of `forecast backtest`: one per model and horizon."""
    from sklearn.metrics import average_precision_score

    rows = []
    for h in sorted({h for _, h in scores}):
        arrays = {m: {k: np.asarray(getattr(s, k), dtype=float) for k in ("origin", "p", "occurred", "crps",
                                                                            "crps_fatalities")}
                  for (m, hh), s in scores.items() if hh == h}
        if not arrays or not next(iter(arrays.values()))["p"].size:
            continue
        briers = {m: _brier(a["p"], a["occurred"]) for m, a in arrays.items()}
        crps = {m: float(a["crps"].mean()) for m, a in arrays.items()}
        baselines = [m for m in arrays if kinds[m] == "baseline"]
        best_b = min(baselines, key=lambda m: briers[m])
        best_c = min(baselines, key=lambda m: crps[m])
        for m, a in arrays.items():
            y = a["occurred"]
            sq, sq_b = (a["p"] - y) ** 2, (arrays[best_b]["p"] - y) ** 2
            rows.append({
                "model": m, "kind": kinds[m], "unit": level, "horizon": h,
                "brier": round(briers[m], 5),
                "brier_skill": round(1 - briers[m] / briers[best_b], 4) if briers[best_b] > 0 else None,
                "brier_skill_ci": _skill_interval(a["origin"], sq, sq_b, seed),
                "baseline": best_b,
                "log_loss": round(_log_loss(a["p"], y), 5),
                "average_precision": round(float(average_precision_score(y, a["p"])), 4) if y.any() else None,
                "crps": round(crps[m], 4),
                "crps_skill": round(1 - crps[m] / crps[best_c], 4) if crps[best_c] > 0 else None,
                "crps_baseline": best_c,
                "crps_fatalities": round(float(a["crps_fatalities"].mean()), 3),
                "n": int(y.size), "base_rate": round(float(y.mean()), 4),
            })
    return rows


def period(panel: Panel, first_target: int, last_target: int) -> dict[str, str]:
    # the first month that can be forecast is the one after the panel begins
    return {"from": month_label(max(first_target, panel.start + 1)), "to": month_label(min(last_target, panel.end))}
