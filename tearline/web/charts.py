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


def _albers(west: float, east: float, south: float, north: float) -> Any:
    """An Albers equal-area conic projection for the region (standard parallels at a sixth of its height from
    top and bottom, the usual choice): provinces keep their relative areas, so shading by count does not
    exaggerate the north as an equirectangular map does. (lon, lat) in degrees → (x, y), y up."""
    p1, p2 = math.radians(south + (north - south) / 6), math.radians(north - (north - south) / 6)
    n = (math.sin(p1) + math.sin(p2)) / 2
    c = math.cos(p1) ** 2 + 2 * n * math.sin(p1)
    rho0 = math.sqrt(c - 2 * n * math.sin(math.radians((south + north) / 2))) / n
    lon0 = (west + east) / 2

    def project(lon: float, lat: float) -> tuple[float, float]:
        rho = math.sqrt(c - 2 * n * math.sin(math.radians(lat))) / n
        theta = n * math.radians(lon - lon0)
        return rho * math.sin(theta), rho0 - rho * math.cos(theta)
    return project


def map_svg(counts: dict[str, int], link: str) -> str:
    """Provinces of the bundled Natural Earth outlines, shaded by incidents (each a link to ``link`` formatted
    with its code), on an equal-area projection, with country names and a legend of the shading."""
    feats = boundaries.features()
    rings = {f["properties"]["iso_3166_2"]: boundaries.rings(f["properties"]["iso_3166_2"]) for f in feats}
    lons = [x for rs in rings.values() for ring in rs for x, _ in ring]
    lats = [y for rs in rings.values() for ring in rs for _, y in ring]
    project = _albers(min(lons), max(lons), min(lats), max(lats))
    flat = {code: [[project(x, y) for x, y in ring[::2] or ring] for ring in rs] for code, rs in rings.items()}
    xs = [x for rs in flat.values() for ring in rs for x, _ in ring]
    ys = [y for rs in flat.values() for ring in rs for _, y in ring]
    width, legend = 960.0, 46.0
    scale = width / (max(xs) - min(xs))
    height = (max(ys) - min(ys)) * scale

    def at(x: float, y: float) -> tuple[float, float]:
        return (x - min(xs)) * scale, (max(ys) - y) * scale

    top = max(counts.values(), default=0)
    parts = [f'<svg role="img" aria-label="Incidents by province" viewBox="0 0 {width:.0f} {height + legend:.0f}" '
             f'class="map" xmlns="http://www.w3.org/2000/svg">']
    countries: dict[str, list[tuple[float, float]]] = {}
    for f in feats:
        code = f["properties"]["iso_3166_2"]
        n = counts.get(code, 0)
        points = [at(x, y) for ring in flat[code] for x, y in ring]
        countries.setdefault(f["properties"]["admin"], []).extend(points)
        d = " ".join("M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in ring)) + " Z"
                     for ring in flat[code])
        name = f"{f['properties']['name']}, {f['properties']['admin']}: {n} incident{'s' if n != 1 else ''}"
        parts.append(f'<a href="{escape(link.format(code=code))}" aria-label="{escape(name)}">'
                     f'<path d="{d}" fill="{_shade(n, top)}" stroke="#777" stroke-width="0.5">'
                     f'<title>{escape(name)}</title></path></a>')
    for country, points in countries.items():  # at the middle of its outline's points: inside, for these
        cx, cy = sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)
        parts.append(f'<text x="{cx:.0f}" y="{cy:.0f}" class="country" text-anchor="middle" aria-hidden="true" '
                     f'font-size="18" font-weight="600" fill="#1f2933" stroke="#fff" stroke-width="3" '
                     f'paint-order="stroke">{escape(country.upper())}</text>')
    parts.append(_legend(top, height + 10))
    parts.append("</svg>")
    return "".join(parts)


def _legend(top: int, y: float) -> str:
    """Swatches of the square-root shading at 0, 1 and a quarter, half and all of the largest count."""
    steps = sorted({0, *(v for v in (1, math.ceil(top / 4), math.ceil(top / 2), top) if 0 < v <= top)})
    out = [f'<g class="legend" transform="translate(10 {y:.0f})"><text x="0" y="16" font-size="14">Incidents:</text>']
    for i, v in enumerate(steps):
        x = 90 + i * 90
        out.append(f'<rect x="{x}" y="2" width="22" height="18" fill="{_shade(v, top)}" stroke="#777"/>'
                   f'<text x="{x + 28}" y="16" font-size="14">{v:,}</text>')
    out.append("</g>")
    return "".join(out)


_RING = {"threat-actor": 0, "intrusion-set": 0, "campaign": 1, "malware": 1, "attack-pattern": 1, "tool": 1,
         "indicator": 1, "identity": 1, "report": 1, "incident": 2, "location": 3}
_COLOUR = {"threat-actor": "#b30000", "intrusion-set": "#d95f02", "campaign": "#7570b3", "malware": "#7570b3",
           "attack-pattern": "#7570b3", "tool": "#7570b3", "indicator": "#1b9e77", "identity": "#666666",
           "report": "#a6761d", "incident": "#e7298a", "location": "#1f78b4"}
_LABELLED = ("threat-actor", "intrusion-set", "campaign", "malware", "tool", "attack-pattern", "indicator", "report")
_SIZE, _LEGEND = 900.0, 200.0


def graph_svg(graph: dict[str, Any], link: str) -> str:
    """Actors in the middle, then what is tied to them (campaigns, tools, indicators, reports), the incidents,
    their locations on outer rings; each node a link to its page, each relationship a line, the inner rings
    labelled, and a legend of the types with how many are shown and left out."""
    centre = _SIZE / 2
    rings: dict[int, list[dict[str, Any]]] = {}
    for node in graph["nodes"]:
        rings.setdefault(_RING.get(node["type"], 1), []).append(node)
    where: dict[str, tuple[float, float]] = {}
    for ring, members in rings.items():
        radius = [0, 150, 290, 400][ring] if len(members) > 1 or ring else 0
        for i, node in enumerate(sorted(members, key=lambda n: (n["type"], n.get("created", ""), n["id"]))):
            angle = 2 * math.pi * i / max(len(members), 1) + ring * 0.35
            where[node["id"]] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
    parts = [f'<svg role="img" aria-label="Actor graph" viewBox="0 0 {_SIZE + _LEGEND:.0f} {_SIZE:.0f}" '
             'class="graph" xmlns="http://www.w3.org/2000/svg"><g stroke="#bbb" stroke-width="1">']
    for rel in graph["edges"]:
        a, b = where.get(rel["source_ref"]), where.get(rel["target_ref"])
        if a and b:
            dash = ' stroke-dasharray="4 3"' if rel.get("relationship_type") == "refers to" else ""
            parts.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}"{dash}>'
                         f'<title>{escape(rel.get("relationship_type", "related-to"))}</title></line>')
    parts.append("</g>")
    for node in graph["nodes"]:
        parts.append(_node(node, where[node["id"]], link))
    parts.append(_graph_legend(graph))
    parts.append("</svg>")
    return "".join(parts)


def _node(node: dict[str, Any], at: tuple[float, float], link: str) -> str:
    x, y = at
    r = 16 if node["type"] in ("threat-actor", "intrusion-set") else 7
    name = f"{node['type']}: {views.label(node)}"
    text = ""
    if node["type"] in _LABELLED:
        label = views.label(node)
        label = label if len(label) <= 28 else label[:27] + "…"
        size = 13 if r > 7 else 10
        text = (f'<text x="{x:.1f}" y="{y + r + size:.1f}" text-anchor="middle" font-size="{size}" fill="#1f2933" '
                f'stroke="#fff" stroke-width="3" paint-order="stroke">{escape(label)}</text>')
    return (f'<a href="{escape(link.format(id=node["id"]))}" aria-label="{escape(name)}" class="node">'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{_COLOUR.get(node["type"], "#999")}">'
            f'<title>{escape(name)}</title></circle>{text}</a>')


def _graph_legend(graph: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for node in graph["nodes"]:
        counts[node["type"]] = counts.get(node["type"], 0) + 1
    out = [f'<g class="legend" transform="translate({_SIZE + 10:.0f} 20)"><text x="0" y="0" font-size="14" '
           'font-weight="600">Shown</text>']
    for i, (kind, n) in enumerate(sorted(counts.items(), key=lambda kv: (_RING.get(kv[0], 1), kv[0]))):
        more = graph.get("hidden", {}).get(kind)
        out.append(f'<circle cx="8" cy="{24 + i * 24}" r="7" fill="{_COLOUR.get(kind, "#999")}"/>'
                   f'<text x="22" y="{29 + i * 24}" font-size="13">{escape(kind)} {n}'
                   + (f" (+{more:,} more)" if more else "") + "</text>")
    y = 24 + len(counts) * 24 + 10
    out.append(f'<line x1="0" y1="{y}" x2="16" y2="{y}" stroke="#bbb"/><text x="22" y="{y + 4}" font-size="13">'
               f'relationship</text><line x1="0" y1="{y + 22}" x2="16" y2="{y + 22}" stroke="#bbb" '
               f'stroke-dasharray="4 3"/><text x="22" y="{y + 26}" font-size="13">report refers to</text></g>')
    return "".join(out)
