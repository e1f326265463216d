"""The dashboard's pictures, as inline SVG: nothing is fetched from anywhere but the hub.

The timeline is drawn by matplotlib. The province map and the actor graph are drawn here because
each shape is a link (a province to its incidents, a node to the object's page) that a keyboard can
reach and a screen reader can name; matplotlib's SVG has no links.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from .. import boundaries, views

# One colour per dataset, stable across pages; colour-blind safe (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def timeline_svg(series: dict[str, Sequence[dict[str, Any]]], title: str) -> str:
    """Monthly events and fatalities, one line per dataset (never summed: datasets overlap)."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable, readable by screen readers
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True)
    for i, (source, points) in enumerate(sorted(series.items())):
        x = [dt.date(int(p["month"][:4]), int(p["month"][5:7]), 1) for p in points]
        colour = PALETTE[i % len(PALETTE)]
        top.plot(x, [p["events"] for p in points], marker=".", linewidth=1.2, color=colour, label=source)
        bottom.plot(x, [p["fatalities"] for p in points], marker=".", linewidth=1.2, color=colour, label=source)
    top.set_ylabel("incidents per month")
    bottom.set_ylabel("fatalities (best)")
    top.set_title(title, fontsize=11)
    if series:
        top.legend(fontsize=8, loc="upper left")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    bottom.tick_params(axis="x", rotation=45, labelsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):].replace("<svg ", '<svg role="img" aria-label="' + escape(title) + '" ', 1)


def _shade(count: int, top: int) -> str:
    """White to deep red on a square-root scale (a few provinces dominate)."""
    if count <= 0 or top <= 0:
        return "#f4f4f4"
    t = math.sqrt(count / top)
    r, g, b = 255 - int(t * (255 - 165)), 245 - int(t * (245 - 15)), 240 - int(t * (240 - 21))
    return f"#{r:02x}{g:02x}{b:02x}"


def map_svg(counts: dict[str, int], link: str) -> str:
    """Provinces of the bundled Natural Earth outlines, shaded by incidents; each a link to ``link``
    formatted with its code."""
    feats = boundaries.features()
    xs = [x for f in feats for ring in boundaries.rings(f["properties"]["iso_3166_2"]) for x, _ in ring]
    ys = [y for f in feats for ring in boundaries.rings(f["properties"]["iso_3166_2"]) for _, y in ring]
    west, east, south, north = min(xs), max(xs), min(ys), max(ys)
    lat0 = math.cos(math.radians((south + north) / 2))  # equirectangular, true at the middle latitude
    width = 960.0
    scale = width / ((east - west) * lat0)
    height = (north - south) * scale
    top = max(counts.values(), default=0)
    parts = [f'<svg role="img" aria-label="Incidents by province" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'class="map" xmlns="http://www.w3.org/2000/svg">']
    for f in feats:
        code = f["properties"]["iso_3166_2"]
        n = counts.get(code, 0)
        d = " ".join("M" + " L".join(f"{(x - west) * lat0 * scale:.1f},{(north - y) * scale:.1f}"
                                     for x, y in ring[::2] or ring) + " Z" for ring in boundaries.rings(code))
        name = f"{f['properties']['name']}, {f['properties']['admin']}: {n} incident{'s' if n != 1 else ''}"
        parts.append(f'<a href="{escape(link.format(code=code))}" aria-label="{escape(name)}">'
                     f'<path d="{d}" fill="{_shade(n, top)}" stroke="#777" stroke-width="0.5">'
                     f'<title>{escape(name)}</title></path></a>')
    parts.append("</svg>")
    return "".join(parts)


_RING = {"threat-actor": 0, "intrusion-set": 0, "campaign": 1, "malware": 1, "attack-pattern": 1, "indicator": 1,
         "identity": 1, "report": 1, "incident": 2, "location": 3}
_COLOUR = {"threat-actor": "#b30000", "intrusion-set": "#d95f02", "campaign": "#7570b3", "malware": "#7570b3",
           "attack-pattern": "#7570b3", "indicator": "#1b9e77", "identity": "#666666", "report": "#666666",
           "incident": "#e7298a", "location": "#1f78b4"}


def graph_svg(graph: dict[str, Any], link: str) -> str:
    """Actors in the middle, then campaigns and tools, incidents, their locations on outer rings; each
    node a link to its page, each relationship a line."""
    size = 900.0
    centre = size / 2
    rings: dict[int, list[dict[str, Any]]] = {}
    for node in graph["nodes"]:
        rings.setdefault(_RING.get(node["type"], 1), []).append(node)
    where: dict[str, tuple[float, float]] = {}
    for ring, members in rings.items():
        radius = [0, 150, 290, 400][ring] if len(members) > 1 or ring else 0
        for i, node in enumerate(sorted(members, key=lambda n: (n["type"], n.get("created", ""), n["id"]))):
            angle = 2 * math.pi * i / max(len(members), 1) + ring * 0.35
            where[node["id"]] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
    parts = [f'<svg role="img" aria-label="Actor graph" viewBox="0 0 {size:.0f} {size:.0f}" class="graph" '
             'xmlns="http://www.w3.org/2000/svg"><g stroke="#bbb" stroke-width="1">']
    for rel in graph["edges"]:
        a, b = where.get(rel["source_ref"]), where.get(rel["target_ref"])
        if a and b:
            parts.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}">'
                         f'<title>{escape(rel.get("relationship_type", "related-to"))}</title></line>')
    parts.append("</g>")
    for node in graph["nodes"]:
        x, y = where[node["id"]]
        r = 16 if node["type"] in ("threat-actor", "intrusion-set") else 7
        name = f"{node['type']}: {views.label(node)}"
        text = ""
        if node["type"] in ("threat-actor", "intrusion-set", "campaign", "malware"):
            text = (f'<text x="{x:.1f}" y="{y + r + 14:.1f}" text-anchor="middle" font-size="13">'
                    f'{escape(views.label(node)[:40])}</text>')
        parts.append(f'<a href="{escape(link.format(id=node["id"]))}" aria-label="{escape(name)}" class="node">'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{_COLOUR.get(node["type"], "#999")}">'
                     f'<title>{escape(name)}</title></circle>{text}</a>')
    parts.append("</svg>")
    return "".join(parts)
