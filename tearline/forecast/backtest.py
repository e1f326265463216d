"""Rolling-origin evaluation: at every month t the models see ``panel.history(t)`` only, forecast
horizons 1-6, and are scored when the months they forecast are in the evaluation period.

Scores per model, unit level and horizon: Brier score, its skill against the best baseline (the
baseline with the lowest Brier at that horizon) with a 95% moving-block bootstrap interval, log loss,
average precision, and CRPS of the predictive distributions of attack counts and fatalities
(properscoring, 1,000 samples for every model) with the skill of the count CRPS against the baseline
with the lowest CRPS.

Brier skill is 1 - B_model / B_ref, the ratio of the two Brier scores summed over every scored
unit-month (never a mean of per-month ratios, which a single month with a near-perfect reference
blows up). It is reported only where it measures something, and otherwise given as undefined with
the reason (``brier_skill_undefined``); nothing is clipped:

- the reference made no error at all: the ratio has no denominator;
- either outcome (an attack, a quiet unit-month) occurs fewer than ``MIN_OUTCOMES`` times: the
  reference's error is then made on those few months, and which of them a resample holds decides
  the skill (TTP in Pakistan at country level: 2 quiet months of 120 gave intervals like -462 ... -0.02);
- the reference's error is concentrated in a few months: its effective number of months
  (sum B_t)^2 / sum B_t^2, B_t its error summed over month t, is under ``MIN_EFFECTIVE_MONTHS``.

The interval resamples months, not unit-months (the units of one month share that month), in
circular blocks of ceil(n^(1/3)) consecutive months (n months scored), so that the serial dependence
of conflict, month to month, stays inside a block; each resample's skill is again a ratio of sums.
Where a resample's reference has no error, or the percentile interval does not contain the observed
skill (a distribution too skewed for a percentile interval), the interval is undefined and says so.
"""

from __future__ import annotations

import dataclasses
import math
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
# Skill is undefined with fewer unit-months than this of either outcome, or with the reference's
# error spread over fewer effective months than this (see the module's docstring).
MIN_OUTCOMES = 10
MIN_EFFECTIVE_MONTHS = 10.0
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


@dataclasses.dataclass(frozen=True)
class Skill:
    """Brier skill against a reference: the point (None when undefined), its 95% interval (None when
    there is none to give) and, when either is missing, why."""

    point: float | None
    interval: list[float] | None
    undefined: str | None = None


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def skill(origin: np.ndarray, model: np.ndarray, reference: np.ndarray, occurred: np.ndarray, reference_name: str,
          seed: int = 0) -> Skill:
    """1 - sum(model) / sum(reference) over unit-month losses (``model``, ``reference``) with a 95%
    circular moving-block bootstrap interval over the months in ``origin``, or the reason it is
    undefined (the module's docstring gives the rules and why)."""
    keys, inverse = np.unique(origin, return_inverse=True)
    per_m = np.bincount(inverse, weights=model)
    per_b = np.bincount(inverse, weights=reference)
    total_b = float(per_b.sum())
    if total_b <= 0:
        return Skill(None, None, f"the reference ({reference_name}) made no error in {_plural(keys.size, 'month')}")
    attacks = int(occurred.sum())
    quiet = int(occurred.size - attacks)
    if min(attacks, quiet) < MIN_OUTCOMES:
        few, which = (attacks, "with an attack") if attacks < quiet else (quiet, "without an attack")
        return Skill(None, None, f"only {few} of {occurred.size} unit-months {which} (fewer than {MIN_OUTCOMES}): "
                                 f"too few to measure skill against {reference_name}")
    effective = total_b ** 2 / float((per_b ** 2).sum())
    if effective < MIN_EFFECTIVE_MONTHS:
        return Skill(None, None, f"{reference_name}'s error falls in few months (as if in {effective:.1f} of "
                                 f"{keys.size}, fewer than {MIN_EFFECTIVE_MONTHS:.0f}): too few to measure skill "
                                 "against it")
    point = 1.0 - float(per_m.sum()) / total_b
    n = keys.size
    block = math.ceil(n ** (1 / 3))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(BOOTSTRAP, math.ceil(n / block)))
    # month positions, in time order (np.unique sorts), of each resample's blocks, wrapping round
    pick = ((starts[:, :, None] + np.arange(block)) % n).reshape(BOOTSTRAP, -1)[:, :n]
    b = per_b[pick].sum(axis=1)
    if (b <= 0).any():
        return Skill(round(point, 4), None, f"the reference made no error in {int((b <= 0).sum())} of {BOOTSTRAP} "
                                            "resamples of the months, so the interval has no denominator there")
    lo, hi = (float(v) for v in np.percentile(1.0 - per_m[pick].sum(axis=1) / b, [2.5, 97.5]))
    if not lo <= point <= hi:
        return Skill(round(point, 4), None, f"the bootstrap distribution is too skewed for an interval "
                                            f"({lo:+.3f} … {hi:+.3f} leaves out the observed {point:+.3f})")
    return Skill(round(point, 4), [round(lo, 4), round(hi, 4)])


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
            if m == best_b:
                bss = Skill(0.0, None, "this is the reference: the others' skill is measured against it")
            else:
                sq, sq_b = (a["p"] - y) ** 2, (arrays[best_b]["p"] - y) ** 2
                bss = skill(a["origin"], sq, sq_b, y, best_b, seed)
            rows.append({
                "model": m, "kind": kinds[m], "unit": level, "horizon": h,
                "brier": round(briers[m], 5),
                "brier_skill": bss.point, "brier_skill_ci": bss.interval, "brier_skill_undefined": bss.undefined,
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
