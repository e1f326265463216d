"""What a forecast has to beat: climatology, no-change and an exponentially weighted recent rate.

Every model, baseline or not, answers the same question for each unit and horizon: the probability
of at least one attack, and samples from the predictive distribution of the number of attacks and of
their fatalities (CRPS is computed from samples, the same number for every model).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .panel import Panel

SAMPLES = 1000
# A unit with fewer past attacks than this borrows the size of attacks from all units.
OWN_SEVERITY_MIN = 20


@dataclasses.dataclass(frozen=True)
class Prediction:
    p: np.ndarray  # [units] probability of at least one event
    counts: np.ndarray  # [units, SAMPLES]
    fatalities: np.ndarray  # [units, SAMPLES]
    note: str | None = None  # what a reader must know about how this was made (e.g. a fallback)


def succession(p: np.ndarray, n: int) -> np.ndarray:
    """Laplace's rule of succession on a model's probability: read p as a frequency over the n
    unit-months the model learnt from, and add one success and one failure. No finite sample shows an
    attack to be certain or impossible, so the result lies in [1/(n+2), (n+1)/(n+2)], never at 0 or 1;
    it moves a probability by at most 1/(n+2), well inside what a backtest can tell apart."""
    return (n * np.asarray(p, dtype=float) + 1.0) / (n + 2.0)


def compound(counts: np.ndarray, hist: Panel, rng: np.random.Generator) -> np.ndarray:
    """Fatalities for sampled event counts: each sampled event's toll is drawn from the unit's past
    attacks (all units' when it has few), which keeps the heavy tail of attack sizes."""
    pooled = hist.event_fatalities
    out = np.zeros_like(counts, dtype=float)
    if pooled.size == 0:
        return out
    for u in range(counts.shape[0]):
        own = hist.event_fatalities[hist.event_unit == u]
        pool = own if own.size >= OWN_SEVERITY_MIN else pooled
        n = counts[u].astype(int)
        total = int(n.sum())
        if total == 0:
            continue
        draws = rng.choice(pool, size=total)
        ends = np.cumsum(n)
        sums = np.concatenate([[0.0], np.cumsum(draws)])
        out[u] = sums[ends] - sums[ends - n]
    return out


class Climatology:
    """Each unit's own recent history as the forecast (VIEWS' "conflictology"): the probability is
    the share of active months, and counts and fatalities are resampled from the same months."""

    name, kind = "climatology", "baseline"

    def __init__(self, window: int = 36):
        self.window = window

    def predict(self, hist: Panel, horizons: list[int], rng: np.random.Generator) -> dict[int, Prediction]:
        recent = slice(max(0, hist.months - self.window), hist.months)
        counts, fat = hist.counts[:, recent], hist.fatalities[:, recent]
        p = (counts > 0).mean(axis=1)
        pick = rng.integers(0, counts.shape[1], size=(counts.shape[0], SAMPLES))
        rows = np.arange(counts.shape[0])[:, None]
        pred = Prediction(p=p, counts=counts[rows, pick], fatalities=fat[rows, pick])
        return dict.fromkeys(horizons, pred)


class NoChange:
    """Last month again, exactly (the forecast that beat every entry of one VIEWS competition)."""

    name, kind = "no-change", "baseline"

    def predict(self, hist: Panel, horizons: list[int], rng: np.random.Generator) -> dict[int, Prediction]:
        last_n, last_f = hist.counts[:, -1], hist.fatalities[:, -1]
        pred = Prediction(p=(last_n > 0).astype(float), counts=np.repeat(last_n[:, None], SAMPLES, axis=1),
                          fatalities=np.repeat(last_f[:, None], SAMPLES, axis=1))
        return dict.fromkeys(horizons, pred)


def ewma(values: np.ndarray, half_life: float) -> np.ndarray:
    """Exponentially weighted mean along the last axis, the newest month weighing most."""
    weights = 0.5 ** (np.arange(values.shape[-1])[::-1] / half_life)
    return (values * weights).sum(axis=-1) / weights.sum()


class RecentRate:
    """An exponentially weighted recent rate of attacks, with Poisson counts around it."""

    name, kind = "recent-rate", "baseline"

    def __init__(self, half_life: float = 3.0):
        self.half_life = half_life

    def predict(self, hist: Panel, horizons: list[int], rng: np.random.Generator) -> dict[int, Prediction]:
        rate = ewma(hist.counts, self.half_life)
        counts = rng.poisson(rate[:, None], size=(rate.size, SAMPLES)).astype(float)
        pred = Prediction(p=1.0 - np.exp(-rate), counts=counts, fatalities=compound(counts, hist, rng))
        return dict.fromkeys(horizons, pred)
