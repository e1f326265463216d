"""A self-exciting (Hawkes) point process: each attack raises the chance of another in the same unit
for a while, on top of a background rate per unit.

Intensity in unit u at time s (in months): mu_u + n * omega * sum over earlier attacks in u of
exp(-omega * (s - t_i)), where n in (0, 1) is the share of attacks triggered by earlier ones (the
branching ratio) and 1/omega their characteristic delay. The background rates, n and omega are fitted
by maximum likelihood on a trailing window (the background of an insurgency changes over years).
The expected intensity after the last observed month has a closed form, and so does its integral over
a future month, which is the expected number of attacks there.
"""

from __future__ import annotations

import numpy as np

from .baselines import SAMPLES, Prediction, compound, succession
from .panel import Panel

MAX_OMEGA = 8.0  # per month: excitation decays no faster than with a half-life of about 2.6 days
MEMORY = 12  # months before the window whose attacks still excite it


def _spread_ties(times: np.ndarray) -> np.ndarray:
    """Attacks on the same day are spread across that day, so none excites another at distance zero
    (which would let the likelihood grow without bound)."""
    out = times.copy()
    values, starts, counts = np.unique(times, return_index=True, return_counts=True)
    for v, c in zip(values[counts > 1], counts[counts > 1], strict=True):
        idx = np.nonzero(times == v)[0]
        out[idx] = v + ((np.arange(c) + 0.5) / c - 0.5) / 30.0
    return out


class Hawkes:
    name, kind = "hawkes", "model"

    def __init__(self, window: int = 36, refit_every: int = 6):
        self.window = window
        self.refit_every = refit_every
        self._fit_at: int | None = None
        self._params: tuple[np.ndarray, float, float] | None = None

    def _events(self, hist: Panel) -> tuple[np.ndarray, np.ndarray]:
        keep = hist.event_time >= hist.months - self.window - MEMORY
        order = np.lexsort((hist.event_time[keep], hist.event_unit[keep]))
        units, times = hist.event_unit[keep][order], hist.event_time[keep][order]
        for u in np.unique(units):
            sel = units == u
            times[sel] = _spread_ties(times[sel])
        return units, times

    def _fit(self, hist: Panel) -> tuple[np.ndarray, float, float]:
        from scipy.optimize import minimize

        units, times = self._events(hist)
        n_units = len(hist.units)
        end = float(hist.months)
        begin = max(0.0, end - self.window)
        inside = times >= begin
        span = end - begin
        first = np.r_[True, units[1:] != units[:-1]]
        # gaps to the previous attack in the same unit (none for a unit's first)
        gaps = np.where(first, 0.0, np.diff(times, prepend=times[:1] if times.size else 0.0))

        def negloglik(theta: np.ndarray) -> float:
            mu = np.exp(theta[:n_units])
            branching = 1.0 / (1.0 + np.exp(-theta[n_units]))
            omega = MAX_OMEGA / (1.0 + np.exp(-theta[n_units + 1]))
            # r_i = sum over earlier attacks j in the same unit of exp(-omega (t_i - t_j)), by recursion
            decay = np.exp(-omega * gaps)
            r = np.zeros(times.size)
            for i in range(1, times.size):
                if not first[i]:
                    r[i] = decay[i] * (1.0 + r[i - 1])
            lam = mu[units] + branching * omega * r
            compensator = mu.sum() * span + branching * (
                np.exp(-omega * np.maximum(begin - times, 0.0)) - np.exp(-omega * (end - times))).sum()
            return -(np.log(lam[inside]).sum() - compensator)

        counts = np.bincount(units[inside], minlength=n_units) if units.size else np.zeros(n_units)
        start = np.r_[np.log(np.maximum(counts, 0.5) / span * 0.7), 0.0, 0.0]
        res = minimize(negloglik, start, method="L-BFGS-B", options={"maxiter": 200})
        theta = res.x
        return (np.exp(theta[:n_units]), float(1.0 / (1.0 + np.exp(-theta[n_units]))),
                float(MAX_OMEGA / (1.0 + np.exp(-theta[n_units + 1]))))

    def expected(self, hist: Panel, horizons: list[int]) -> dict[int, np.ndarray]:
        epoch = (hist.end + 1) // self.refit_every  # fixed calendar months, as in boosting
        if self._params is None or self._fit_at != epoch:
            self._params = self._fit(hist)
            self._fit_at = epoch
        mu, branching, omega = self._params
        units, times = self._events(hist)
        end = float(hist.months)
        excitation = np.bincount(units, weights=branching * omega * np.exp(-omega * (end - times)),
                                 minlength=len(hist.units)) if units.size else np.zeros(len(hist.units))
        # E[lambda(end + x)] = mean + (lambda(end) - mean) * exp(-kappa x), with mean = mu / (1 - n)
        kappa = omega * (1.0 - branching)
        mean = mu / (1.0 - branching)
        now = mu + excitation
        return {h: mean + (now - mean) * (np.exp(-kappa * (h - 1)) - np.exp(-kappa * h)) / kappa for h in horizons}

    def predict(self, hist: Panel, horizons: list[int], rng: np.random.Generator) -> dict[int, Prediction]:
        out = {}
        for h, rate in self.expected(hist, horizons).items():
            counts = rng.poisson(rate[:, None], size=(rate.size, SAMPLES)).astype(float)
            # fitted on the unit-months of its window: no more certain than they allow (never 0 or 1)
            p = succession(1.0 - np.exp(-rate), len(hist.units) * min(self.window, hist.months))
            out[h] = Prediction(p=p, counts=counts, fatalities=compound(counts, hist, rng))
        return out
