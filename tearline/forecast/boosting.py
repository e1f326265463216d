"""Gradient boosting (LightGBM) on the unit's recent history, its neighbours and its country.

One model per horizon ("stepshift"): rows are (unit, month s) with features known at the end of s
and the outcome at s + h, so training at origin t only uses pairs with s + h <= t.

Calibration: the classifier boosts from a starting probability with few, shallow, shrunk trees, so
its probabilities stay on the scale of that start. The start is the chance of at least one attack
under the model's own count distribution: a negative binomial around the recent rate, with the
dispersion fitted on the training months. It used to be the Poisson chance 1 - exp(-rate), which
treats attacks as independent; they cluster, so a busy unit has more quiet months than Poisson
allows, and the Poisson start put the Federally Administered Tribal Areas at 99.6% for January 2022
while the model's own counts said 97% (TTP, data to 2021-12; in the 2012-2021 backtest the
boosting forecasts above 0.99 averaged 0.998 and were right 98.0% of the time). Platt scaling on a
held-out tail of the training months was tried and made every score worse on this little data (it
was fitted on 24 months of a few active provinces); the reliability diagram of the backtest is the
evidence either way. Finally every probability goes through Laplace's rule of succession over the
training unit-months (``baselines.succession``), so none is 0 or 1.
"""

from __future__ import annotations

import numpy as np

from .. import boundaries
from .baselines import SAMPLES, Prediction, compound, ewma, succession
from .panel import Panel

NEVER = 120.0  # months since the last event, for a unit with none yet
# fewer months with a known outcome than this and the classifier is not fitted (the baseline stands)
MIN_TRAINING_MONTHS = 12


def _rolling(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` months up to and including each month (fewer at the start)."""
    c = np.cumsum(np.pad(values, ((0, 0), (1, 0))), axis=1)
    idx = np.arange(values.shape[1]) + 1
    lo = np.maximum(idx - window, 0)
    return (c[:, idx] - c[:, lo]) / (idx - lo)


def _ewma_series(values: np.ndarray, half_life: float) -> np.ndarray:
    """[units, months]: the recent-rate baseline's rate as known at the end of each month."""
    return np.stack([ewma(values[:, : s + 1], half_life) for s in range(values.shape[1])], axis=1)


def _since_last(counts: np.ndarray) -> np.ndarray:
    out = np.full(counts.shape, NEVER)
    for u in range(counts.shape[0]):
        last = None
        for s in range(counts.shape[1]):
            if counts[u, s] > 0:
                last = s
            if last is not None:
                out[u, s] = min(s - last, NEVER)
    return out


def neighbour_matrix(panel: Panel) -> np.ndarray:
    """[units, units] 1 where two provinces share a border (country panels: no neighbours)."""
    m = np.zeros((len(panel.units), len(panel.units)))
    if panel.level != "province":
        return m
    codes = [boundaries.code(iso, prov) for iso, prov in panel.units]
    adjacent = boundaries.neighbours()
    for i, a in enumerate(codes):
        for j, b in enumerate(codes):
            if a and b and b in adjacent.get(a, ()):
                m[i, j] = 1.0
    return m


FEATURES = ("n0", "n1", "n2", "n3", "mean3", "mean6", "mean12", "mean36", "ewma3", "fat0", "fat12", "since_last",
            "neighbours0", "neighbours3", "country_rest3", "country_trend", "share12", "target_month",
            "ewma1", "ewma12")


def features(panel: Panel, horizon: int) -> np.ndarray:
    """[units, months, features]: everything known at the end of each month (causal windows only)."""
    n = np.log1p(panel.counts)
    lag = lambda k: np.pad(n, ((0, 0), (k, 0)), constant_values=np.nan)[:, : n.shape[1]]  # noqa: E731
    mean = lambda w: np.log1p(_rolling(panel.counts, w))  # noqa: E731
    weighted = _ewma_series(panel.counts, 3.0)
    adj = neighbour_matrix(panel)
    national = panel.country_totals()
    rest = national - panel.counts
    share = _rolling(panel.counts, 12) / np.maximum(_rolling(national, 12), 1e-9)
    month_of_year = (panel.start + np.arange(panel.months) + horizon) % 12
    cols = [
        lag(0), lag(1), lag(2), lag(3), mean(3), mean(6), mean(12), mean(36), np.log1p(weighted),
        np.log1p(panel.fatalities), np.log1p(_rolling(panel.fatalities, 12)), _since_last(panel.counts),
        np.log1p(adj @ panel.counts), np.log1p(adj @ _rolling(panel.counts, 3)), np.log1p(_rolling(rest, 3)),
        np.log1p(_rolling(national, 3)) - np.log1p(_rolling(national, 12)), share,
        np.broadcast_to(month_of_year, n.shape).astype(float),
        np.log1p(_ewma_series(panel.counts, 1.0)), np.log1p(_ewma_series(panel.counts, 12.0)),
    ]
    return np.stack(cols, axis=2)


class Boosting:
    """LightGBM boosted from the recent rate: the classifier (attack or not) starts from the log-odds
    of at least one attack under the negative binomial around the recent rate (the model's own count
    distribution), so with no signal in the features the model is that distribution, and the trees
    only learn the corrections that the neighbours, the national trend, the time since the last
    attack and the longer and shorter memories support. Refitted every `refit_every` months on the
    history available then.

    Counts: a negative binomial around the recent rate, its dispersion fitted on the training months
    (attacks cluster, so counts vary far more than Poisson). A boosted Poisson regressor for the mean
    was tried and scored worse than the recent rate in the rolling-origin backtest, so it is not used.
    """

    name, kind = "boosting", "model"

    def __init__(self, refit_every: int = 6, seed: int = 0, trees: int = 50):
        self.refit_every = refit_every
        self.seed = seed
        self.trees = trees
        self._fits: dict[int, tuple[int | None, tuple]] = {}  # horizon -> (refit epoch, fitted parts)

    def _params(self) -> dict:
        return {"n_estimators": self.trees, "learning_rate": 0.03, "num_leaves": 4, "min_child_samples": 30,
                "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 5.0,
                "random_state": self.seed, "deterministic": True, "force_row_wise": True, "n_jobs": 1, "verbose": -1}

    def _fit(self, hist: Panel, h: int, x: np.ndarray, rate: np.ndarray) -> tuple:
        import lightgbm as lgb

        usable = hist.months - h  # months s whose outcome s + h is known
        y = hist.counts[:, h: h + usable]
        occ = (y > 0).astype(int).reshape(-1)
        if usable < MIN_TRAINING_MONTHS or occ.min() == occ.max():
            return ()
        # var = mu + dispersion * mu^2, by the method of moments on rate-vs-outcome pairs, each of
        # which is out of sample (the rate at s knows nothing of s + h)
        mu = rate[:, :usable]
        dispersion = max(0.0, float(((y - mu) ** 2 - mu).sum() / (mu ** 2).sum()))
        clf = lgb.LGBMClassifier(**self._params()).fit(
            x[:, :usable].reshape(-1, x.shape[2]), occ, init_score=_start_logit(mu, dispersion).reshape(-1))
        return (clf, dispersion, int(occ.size))

    def predict(self, hist: Panel, horizons: list[int], rng: np.random.Generator) -> dict[int, Prediction]:
        x = features(hist, 0)
        rate = np.maximum(np.exp(x[:, :, FEATURES.index("ewma3")]) - 1.0, 1e-3)
        out = {}
        for h in horizons:
            x[:, :, FEATURES.index("target_month")] = (hist.start + np.arange(hist.months) + h) % 12
            # refits fall on fixed calendar months, so a forecast does not depend on where a run began
            epoch = (hist.end + 1) // self.refit_every
            seen, fit = self._fits.get(h, (None, ()))
            if seen != epoch:
                fit = self._fit(hist, h, x, rate)
                self._fits[h] = (epoch, fit)
            note = None
            if not fit:  # too little history, or never an attack: the recent-rate baseline itself
                # (rate >= 0.001, so p >= 0.001; the rule of succession over a few months would swamp it)
                p, dispersion = np.minimum(1.0 - np.exp(-rate[:, -1]), 1 - 1e-3), 0.0
                note = (f"boosting was not fitted: it needs {MIN_TRAINING_MONTHS} months of history plus the horizon, "
                        f"with both attacks and quiet months, and has {hist.months}; these are the recent-rate "
                        "baseline's probabilities")
            else:
                clf, dispersion, n = fit
                raw = clf.predict(x[:, -1, :], raw_score=True) + _start_logit(rate[:, -1], dispersion)
                p = succession(1.0 / (1.0 + np.exp(-raw)), n)
            counts = _negative_binomial(rate[:, -1], dispersion, rng)
            out[h] = Prediction(p=p, counts=counts, fatalities=compound(counts, hist, rng), note=note)
        return out


def _start_logit(mu: np.ndarray, dispersion: float) -> np.ndarray:
    """Log-odds of at least one attack under the negative binomial with mean mu and this dispersion
    (Poisson at dispersion 0): P(0) = (1 + dispersion * mu) ** (-1 / dispersion). Bounded to
    [0.001, 0.999] only so that the log-odds stay finite; the trees and the rule of succession decide
    the final probability."""
    quiet = np.exp(-mu) if dispersion <= 1e-9 else np.exp(-np.log1p(dispersion * mu) / dispersion)
    p0 = np.clip(1.0 - quiet, 1e-3, 1 - 1e-3)
    return np.log(p0 / (1 - p0))


def _negative_binomial(mu: np.ndarray, dispersion: float, rng: np.random.Generator) -> np.ndarray:
    """Samples with mean mu and variance mu + dispersion * mu^2 (Poisson when dispersion is 0)."""
    shape = (mu.size, SAMPLES)
    if dispersion <= 1e-9:
        return rng.poisson(mu[:, None], size=shape).astype(float)
    lam = rng.gamma(1.0 / dispersion, (mu * dispersion)[:, None], size=shape)
    return rng.poisson(lam).astype(float)
