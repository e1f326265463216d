"""The pictures of a backtest and of a forecast: reliability diagram, skill by horizon, and a map of
the provinces coloured by the probability of an attack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import boundaries
from .backtest import Scores
from .current import percent

COLOURS = {"climatology": "#8c8c8c", "no-change": "#bcbd22", "recent-rate": "#1f77b4", "boosting": "#d62728",
           "hawkes": "#2ca02c"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reliability(scores: dict[tuple[str, int], Scores], horizons: Sequence[int], title: str, path: str,
                bins: int = 10) -> None:
    """Forecast probability against observed frequency, pooled over the given horizons; the marker
    size is the number of forecasts in the bin, since most bins of a sparse panel are nearly empty."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 6.2))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--", label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for model in dict.fromkeys(m for m, _ in scores):
        p = np.concatenate([np.asarray(scores[(model, h)].p) for h in horizons if (model, h) in scores])
        y = np.concatenate([np.asarray(scores[(model, h)].occurred) for h in horizons if (model, h) in scores])
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        xs, ys, ns = [], [], []
        for b in range(bins):
            sel = which == b
            if sel.any():
                xs.append(p[sel].mean())
                ys.append(y[sel].mean())
                ns.append(sel.sum())
        ax.plot(xs, ys, marker="o", linewidth=1.2, color=COLOURS.get(model), label=model, markersize=3)
        ax.scatter(xs, ys, s=np.sqrt(ns) * 6, color=COLOURS.get(model), alpha=0.35)
    ax.set_xlabel("forecast probability of at least one attack")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def skill_by_horizon(rows: list[dict[str, Any]], title: str, path: str) -> None:
    """Brier skill (with its bootstrap interval) and count-CRPS skill against the best baseline."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["horizon"])
        h = [r["horizon"] for r in mine]
        # an undefined skill or interval is a gap in the line or the band, never a zero
        bss = np.array([np.nan if r["brier_skill"] is None else r["brier_skill"] for r in mine])
        lo = np.array([r["brier_skill_ci"][0] if r["brier_skill_ci"] else np.nan for r in mine])
        hi = np.array([r["brier_skill_ci"][1] if r["brier_skill_ci"] else np.nan for r in mine])
        colour = COLOURS.get(model)
        left.plot(h, bss, marker="o", color=colour, label=model)
        left.fill_between(h, lo, hi, color=colour, alpha=0.12)
        right.plot(h, [r["crps_skill"] or 0.0 for r in mine], marker="o", color=colour, label=model)
    for ax, what in ((left, "Brier skill score"), (right, "CRPS skill (attack counts)")):
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel("horizon (months ahead)")
        ax.set_ylabel(f"{what} vs best baseline")
        ax.set_ylim(max(ax.get_ylim()[0], -1.0), ax.get_ylim()[1])
    left.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    undefined = sorted({r["brier_skill_undefined"] for r in rows
                        if r["brier_skill"] is None and r["brier_skill_undefined"]})
    fig.text(0.01, 0.01, "Above zero beats the best baseline at that horizon; the band is a 95% moving-block "
             "bootstrap interval." + (f" Brier skill undefined: {undefined[0]}." if undefined else ""),
             fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def forecast_map(units: Sequence[tuple[str, str | None]], p: Sequence[float], title: str, path: str) -> list[str]:
    """Provinces shaded by probability; returns the units that could not be drawn (no boundary)."""
    plt = _plt()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Polygon

    cmap, norm = plt.get_cmap("OrRd"), Normalize(0, 1)
    fig, ax = plt.subplots(figsize=(8, 7.5))
    countries = {iso for iso, _ in units}
    drawn: dict[str, float] = {}
    missing = []
    for (iso, province), prob in zip(units, p, strict=True):
        code = boundaries.code(iso, province)
        if code is None:
            missing.append(f"{iso}: {province}")
        else:
            drawn[code] = float(prob)
    for feature in boundaries.features():
        props = feature["properties"]
        if props["adm0_a3"] not in countries:
            continue
        code = props["iso_3166_2"]
        colour = cmap(norm(drawn[code])) if code in drawn else "#f2f2f2"
        for ring in boundaries.rings(code):
            ax.add_patch(Polygon(ring, closed=True, facecolor=colour, edgecolor="#555555", linewidth=0.4))
        if code in drawn:
            xs, ys = zip(*max(boundaries.rings(code), key=len), strict=True)
            ax.text(np.mean(xs), np.mean(ys), f"{props['name']}\n{percent(drawn[code])}", fontsize=6.5,
                    ha="center", va="center")
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6,
                 label="probability of at least one attack")
    ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, "Boundaries: Natural Earth (public domain). Grey: no forecast for that province.",
             fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return missing
