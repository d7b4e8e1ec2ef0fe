"""Render a PipeGraph as JSON, Graphviz dot, Mermaid or SVG (pure: text in, text out).

Every node is coloured **and** labelled with its state (a glyph and the word), so colour is never
the only signal. The SVG uses MLPipe's own layout (graph_layout), no external binary.
"""

from __future__ import annotations

import json
from html import escape

from mlpipe.core.graph import STATES, PipeGraph
from mlpipe.core.graph_layout import LAYER_GAP, NODE_H, ROW_GAP, layout_graph

# state -> (fill, stroke, glyph); the web UI's stylesheet is generated from this table too
STYLE = {
    "failed": ("#ffd6d6", "#b71c1c", "\u2717"),
    "canceled": ("#e8e0f0", "#5e35b1", "\u25a0"),
    "running": ("#cfe8ff", "#0d47a1", "\u25b6"),
    "stale": ("#fff1c2", "#a15c00", "\u25cb"),
    "pull": ("#d6e6fb", "#1565c0", "\u2193"),
    "skipped": ("#eeeeee", "#616161", "\u2013"),
    "succeeded": ("#b9e6bb", "#1b5e20", "\u2713"),
    "up-to-date": ("#dff3df", "#2e7d32", "\u2713"),
    "unknown": ("#ffffff", "#555555", ""),
}
assert set(STYLE) == set(STATES)
# a cubic curve bulges 3/4 of its control points' offset: this puts a long edge's top halfway
# into the gap above its row
ARCH = (NODE_H / 2 + ROW_GAP / 2) / 0.75
NAME_CHARS = 24  # longer names are cut in the box; the full name is in the node's <title>


def state_label(state: str) -> str:
    """The words a node shows for its state, e.g. '✗ failed' (empty without --status)."""
    glyph = STYLE[state][2]
    return "" if state == "unknown" else f"{glyph} {state}"


def to_json(graph: PipeGraph) -> str:
    return json.dumps(graph.as_json(), indent=2)


def to_dot(graph: PipeGraph) -> str:
    lines = [f"digraph {_dot_str(graph.pipe)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="sans-serif"];']
    for n in graph.nodes:
        fill, stroke, _glyph = STYLE[n.state]
        label = _dot_str(n.id) if n.state == "unknown" else _dot_str(n.id, state_label(n.state))
        lines.append(f"  {_dot_str(n.id)} [label={label}, fillcolor=\"{fill}\", color=\"{stroke}\"];")
    for e in graph.edges:
        lines.append(f"  {_dot_str(e.src)} -> {_dot_str(e.dst)} [label={_dot_str(e.data)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_str(*lines: str) -> str:
    """A dot double-quoted string, one line per argument."""
    return '"' + "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t in lines) + '"'


def to_mermaid(graph: PipeGraph) -> str:
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}  # Mermaid ids must be plain words
    lines = ["flowchart LR"]
    for n in graph.nodes:
        label = n.id if n.state == "unknown" else f"{n.id}<br/>{state_label(n.state)}"
        lines.append(f'  {ids[n.id]}["{_mermaid_text(label)}"]:::{_css_name(n.state)}')
    for e in graph.edges:
        lines.append(f'  {ids[e.src]} -->|"{_mermaid_text(e.data)}"| {ids[e.dst]}')
    for state in sorted({n.state for n in graph.nodes}):
        fill, stroke, _glyph = STYLE[state]
        lines.append(f"  classDef {_css_name(state)} fill:{fill},stroke:{stroke}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def _css_name(state: str) -> str:
    return "st-" + state


def to_svg(graph: PipeGraph) -> str:
    """A standalone SVG (colours as attributes, so it needs no stylesheet); the web UI adds
    classes and data attributes to the same elements to restyle and update them live."""
    layout = layout_graph([n.id for n in graph.nodes], [(e.src, e.dst) for e in graph.edges])
    w, h = round(layout.width), round(layout.height)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(graph.pipe)}</title>", '<g class="edges" fill="none" stroke="#8a8a8a">']
    for e in graph.edges:
        a, b = layout.boxes[e.src], layout.boxes[e.dst]
        x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2
        if b.layer - a.layer > 1:  # over the jobs between: arch into the gap above their row
            c1, c2 = f"{x1 + LAYER_GAP:.0f},{y1 - ARCH:.0f}", f"{x2 - LAYER_GAP:.0f},{y2 - ARCH:.0f}"
        else:
            mid = (x1 + x2) / 2
            c1, c2 = f"{mid:.0f},{y1:.0f}", f"{mid:.0f},{y2:.0f}"
        out.append(f'<path d="M{x1:.0f},{y1:.0f} C{c1} {c2} {x2:.0f},{y2:.0f}" '
                   f'data-from="{escape(e.src)}" data-to="{escape(e.dst)}"><title>{escape(e.data)}</title></path>')
    out.append('</g><g class="nodes">')
    for n in graph.nodes:
        box = layout.boxes[n.id]
        fill, stroke, _glyph = STYLE[n.state]
        name = n.id if len(n.id) <= NAME_CHARS else n.id[:NAME_CHARS - 1] + "\u2026"
        members = f" ({n.sweep['members']} members)" if n.sweep and "members" in n.sweep else ""
        tip = f"{n.id}{members}: {n.state}" + "".join(f"\n{r}" for r in n.reasons)
        out.append(
            f'<g class="node {_css_name(n.state)}" data-id="{escape(n.id)}" data-state="{n.state}" '
            f'data-status="{escape(n.status or "")}" data-action="{escape(n.action or "")}" '
            f'transform="translate({box.x:.0f},{box.y:.0f})" tabindex="0">'
            f"<title>{escape(tip)}</title>"
            f'<rect width="{box.w:.0f}" height="{box.h:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
            'stroke-width="1.5"/>'
            f'<text x="8" y="17" font-weight="bold">{escape(name)}</text>'
            f'<text class="state" x="8" y="34" fill="{stroke}">{escape(state_label(n.state) + members)}</text></g>')
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


FORMATS = {"json": to_json, "dot": to_dot, "mermaid": to_mermaid, "svg": to_svg}
