"""A layered DAG layout, left to right (pure): layers, crossing reduction, coordinates.

    a ──> b ──> d          layer 0   layer 1   layer 2
     └──> c ──┘            [a]       [b, c]    [d]

1. Layers by longest path from the sources (every edge goes to a higher layer).
2. Crossing reduction: a few barycenter sweeps (down, then up); each node takes the mean
   relative position of its neighbours in other layers; ties keep the previous order, so the
   same graph always gives the same drawing.
3. Coordinates: one column per layer, nodes stacked in their order, each column centred; a
   layer of more than MAX_ROWS nodes wraps into several columns.

No dummy nodes for long edges: the sweeps use neighbours in any layer, so a pass costs
O(V + E) plus sorting each layer; 1,000 jobs lay out in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NODE_W, NODE_H = 190.0, 44.0
LAYER_GAP, ROW_GAP, MARGIN = 70.0, 14.0, 16.0
SWEEPS = 4  # down + up passes; more rarely helps and costs time at 1,000 nodes
MAX_ROWS = 40  # a taller layer wraps into more columns


@dataclass(frozen=True)
class Box:
    """A node's place: its layer (column), order in that layer (row) and top-left corner."""

    layer: int
    order: int
    x: float
    y: float
    w: float = NODE_W
    h: float = NODE_H


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]  # in the order the nodes were given
    width: float
    height: float


def layout_graph(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> Layout:
    """Lay out a DAG; `edges` are (from, to) pairs between `nodes` (a cycle raises ValueError)."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in dict.fromkeys(edges):  # duplicate edges count once
        if src not in preds or dst not in preds:
            raise ValueError(f"edge {src} -> {dst} names an unknown node")
        if src != dst:
            succs[src].append(dst)
            preds[dst].append(src)
    layer = _layers(nodes, preds, succs)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in nodes:
        columns[layer[n]].append(n)
    _reduce_crossings(columns, preds, succs)
    return _coordinates(nodes, columns)


def _layers(nodes: Sequence[str], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering in topological order (Kahn's algorithm, stable in the given order)."""
    missing = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if missing[n] == 0]
    layer = dict.fromkeys(ready, 0)
    i = 0
    while i < len(ready):
        n = ready[i]
        i += 1
        for s in succs[n]:
            layer[s] = max(layer.get(s, 0), layer[n] + 1)
            missing[s] -= 1
            if missing[s] == 0:
                ready.append(s)
    if len(ready) != len(nodes):
        raise ValueError("the graph has a cycle")
    return layer


def _reduce_crossings(columns: list[list[str]], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> None:
    """Reorder each column in place by the barycenter of its neighbours' relative positions."""
    pos = _positions(columns)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        order = columns[1:] if downward else columns[-2::-1]
        for column in order:
            neighbours = preds if downward else succs
            keys = {n: (_barycenter(neighbours[n], pos, pos[n]), i) for i, n in enumerate(column)}
            column.sort(key=keys.__getitem__)  # ties keep the current order: stable output
            size = len(column)
            for i, n in enumerate(column):
                pos[n] = (i + 0.5) / size


def _barycenter(near: list[str], pos: dict[str, float], own: float) -> float:
    return sum(pos[m] for m in near) / len(near) if near else own


def _positions(columns: list[list[str]]) -> dict[str, float]:
    """Each node's relative place in its column, in (0, 1): columns of any size compare."""
    return {n: (i + 0.5) / len(column) for column in columns for i, n in enumerate(column)}


def _coordinates(nodes: Sequence[str], columns: list[list[str]]) -> Layout:
    """A layer of more than MAX_ROWS nodes wraps into several columns of equal height, so 999
    jobs feeding one stay a block on screen instead of a column 50,000 pixels tall."""
    wraps = [-(-len(c) // MAX_ROWS) for c in columns]  # sub-columns per layer
    rows = [-(-len(c) // w) for c, w in zip(columns, wraps, strict=True)]
    tallest = max(rows, default=0)
    height = tallest * NODE_H + max(tallest - 1, 0) * ROW_GAP
    placed: dict[str, Box] = {}
    x = MARGIN
    for li, column in enumerate(columns):
        top = MARGIN + (height - rows[li] * NODE_H - (rows[li] - 1) * ROW_GAP) / 2  # the layer's block, centred
        for order, n in enumerate(column):
            sub, row = divmod(order, rows[li])
            placed[n] = Box(li, order, x + sub * (NODE_W + ROW_GAP), top + row * (NODE_H + ROW_GAP))
        x += wraps[li] * NODE_W + (wraps[li] - 1) * ROW_GAP + LAYER_GAP
    width = x - LAYER_GAP + MARGIN if columns else 2 * MARGIN
    return Layout({n: placed[n] for n in nodes}, width, 2 * MARGIN + height)


def count_crossings(layout: Layout, edges: Iterable[tuple[str, str]]) -> int:
    """Crossings between edges joining the same pair of adjacent layers (for tests and tuning)."""
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for src, dst in edges:
        a, b = layout.boxes[src], layout.boxes[dst]
        if b.layer == a.layer + 1:
            by_layer.setdefault(a.layer, []).append((a.order, b.order))
    total = 0
    for pairs in by_layer.values():
        for i, (a1, b1) in enumerate(pairs):
            total += sum(1 for a2, b2 in pairs[i + 1:] if (a1 - a2) * (b1 - b2) < 0)
    return total
