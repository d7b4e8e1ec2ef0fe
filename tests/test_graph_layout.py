"""The layered DAG layout and the graph renderers (pure: no home, no I/O)."""

from __future__ import annotations

import json
import random
import time
import xml.etree.ElementTree as ET

import pytest

from mlpipe.core.graph import GraphEdge, GraphNode, PipeGraph, collapse_sweeps
from mlpipe.core.graph_layout import MAX_ROWS, NODE_H, ROW_GAP, count_crossings, layout_graph
from mlpipe.core.graph_render import STYLE, state_label, to_dot, to_json, to_mermaid, to_svg


def chains(n: int, k: int = 10) -> tuple[list[str], list[tuple[str, str]]]:
    nodes = [f"c{c}_{i}" for c in range(k) for i in range(n // k)]
    return nodes, [(f"c{c}_{i - 1}", f"c{c}_{i}") for c in range(k) for i in range(1, n // k)]


def fan_in(n: int) -> tuple[list[str], list[tuple[str, str]]]:
    nodes = [f"s{i}" for i in range(n - 1)] + ["join"]
    return nodes, [(f"s{i}", "join") for i in range(n - 1)]


def random_dag(n: int, seed: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(n)]
    edges = [(f"n{rng.randrange(i)}", f"n{i}") for i in range(1, n) for _ in range(rng.randint(0, 2))]
    return nodes, edges


GRAPHS = {
    "single": (["a"], []),
    "diamond": (["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]),
    "long edge": (["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")]),
    "chains 1000": chains(1000),
    "fan-in 1000": fan_in(1000),
    "random 1000": random_dag(1000),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_no_two_nodes_overlap(name: str) -> None:
    nodes, edges = GRAPHS[name]
    boxes = sorted(layout_graph(nodes, edges).boxes.values(), key=lambda b: (b.x, b.y))
    by_column: dict[float, list] = {}
    for box in boxes:
        by_column.setdefault(box.x, []).append(box)
    columns = sorted(by_column)
    assert all(b - a >= boxes[0].w for a, b in zip(columns, columns[1:], strict=False))  # columns apart
    for column in by_column.values():  # within a column, boxes stacked without touching
        assert all(lower.y >= upper.y + upper.h for upper, lower in zip(column, column[1:], strict=False))


@pytest.mark.parametrize("name", GRAPHS)
def test_every_edge_goes_to_a_higher_layer_and_everything_fits(name: str) -> None:
    nodes, edges = GRAPHS[name]
    layout = layout_graph(nodes, edges)
    assert set(layout.boxes) == set(nodes)
    assert all(layout.boxes[a].layer < layout.boxes[b].layer for a, b in edges)
    assert all(layout.boxes[a].x + layout.boxes[a].w < layout.boxes[b].x for a, b in edges)  # drawn rightwards
    assert all(b.x >= 0 and b.x + b.w <= layout.width and b.y >= 0 and b.y + b.h <= layout.height
               for b in layout.boxes.values())


@pytest.mark.parametrize("name", GRAPHS)
def test_same_graph_same_layout(name: str) -> None:
    nodes, edges = GRAPHS[name]
    assert layout_graph(nodes, edges) == layout_graph(list(nodes), list(edges))


def test_longest_path_layering() -> None:
    layout = layout_graph(*GRAPHS["long edge"])
    assert [layout.boxes[n].layer for n in "abc"] == [0, 1, 2]  # c waits for b, not only for a


def test_a_tall_layer_wraps_into_columns() -> None:
    layout = layout_graph(*fan_in(1000))
    sources = [b for n, b in layout.boxes.items() if n != "join"]
    assert len({b.y for b in sources}) == MAX_ROWS  # 999 jobs: 25 columns of 40 (the last one shorter)
    assert len({b.x for b in sources}) == 25
    assert layout.height < (MAX_ROWS + 1) * (NODE_H + ROW_GAP) < layout.width


def test_barycenter_sweeps_remove_avoidable_crossings() -> None:
    # given in a crossing order: a1 feeds b2, a2 feeds b1
    nodes, edges = ["a1", "a2", "b2", "b1"], [("a1", "b2"), ("a2", "b1")]
    layout = layout_graph(nodes, edges)
    assert count_crossings(layout, edges) == 0
    nodes, edges = random_dag(300, seed=3)
    layout = layout_graph(nodes, edges)
    assert count_crossings(layout, edges) < _crossings_in_given_order(nodes, edges)


def _crossings_in_given_order(nodes: list[str], edges: list[tuple[str, str]]) -> int:
    """Crossings when each layer keeps the input order (no sweeps), to compare against."""
    from mlpipe.core import graph_layout

    sweeps = graph_layout.SWEEPS
    graph_layout.SWEEPS = 0
    try:
        return count_crossings(layout_graph(nodes, edges), edges)
    finally:
        graph_layout.SWEEPS = sweeps


def test_layout_time_grows_about_linearly() -> None:
    """A thousand nodes cost about ten times a hundred (quadratic would be a hundred): a ratio
    measured here, so that a loaded machine cannot fail it; the best of a few runs each."""
    def best_time(n: int) -> float:
        nodes, edges = random_dag(n)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            layout_graph(nodes, edges)
            times.append(time.perf_counter() - started)
        return min(times)

    small, large = best_time(100), best_time(1000)
    assert large < 30 * small, f"1000 nodes: {large * 1000:.1f} ms, 100 nodes: {small * 1000:.1f} ms"


def test_a_cycle_or_an_unknown_node_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        layout_graph(["a", "b"], [("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="unknown node"):
        layout_graph(["a"], [("a", "z")])


# -- renderers -----------------------------------------------------------------------------------
def sample() -> PipeGraph:
    nodes = (GraphNode("prep", "prep", "app/module/prep", "up-to-date", "none", state="up-to-date"),
             GraphNode('tr"ain<x>', 'tr"ain<x>', "app/module/train", "stale", "run", state="failed",
                       reasons=("parameter lr changed",)))
    return PipeGraph("app/pipe/p.yaml", nodes, (GraphEdge("prep", 'tr"ain<x>', "clean"),))


def test_svg_labels_every_node_with_its_state_not_only_a_colour() -> None:
    svg = ET.fromstring(to_svg(sample()))
    ns = {"s": "http://www.w3.org/2000/svg"}
    groups = svg.findall(".//s:g[@class]", ns)
    nodes = {g.get("data-id"): g for g in groups if "node" in g.get("class", "").split()}
    assert set(nodes) == {"prep", 'tr"ain<x>'}  # names with quotes and markup survive, escaped
    for state, node_id in (("up-to-date", "prep"), ("failed", 'tr"ain<x>')):
        g = nodes[node_id]
        assert g.get("data-state") == state
        assert g.find("s:rect", ns).get("fill") == STYLE[state][0]
        assert g.find("s:text[@class='state']", ns).text == state_label(state)
    assert "parameter lr changed" in nodes['tr"ain<x>'].find("s:title", ns).text
    assert len(svg.findall(".//s:path", ns)) == 1


def test_dot_mermaid_and_json_carry_nodes_states_and_edges() -> None:
    graph = sample()
    dot = to_dot(graph)
    assert '"prep" -> "tr\\"ain<x>" [label="clean"]' in dot
    assert 'label="tr\\"ain<x>\\n\u2717 failed"' in dot
    mermaid = to_mermaid(graph)
    assert mermaid.startswith("flowchart LR\n")
    assert 'n0 -->|"clean"| n1' in mermaid and ":::st-failed" in mermaid and "classDef st-failed" in mermaid
    data = json.loads(to_json(graph))
    assert data["pipe"] == "app/pipe/p.yaml"
    assert data["edges"] == [{"from": "prep", "to": 'tr"ain<x>', "data": "clean"}]
    assert {k: data["nodes"][1][k] for k in ("id", "job", "module", "status", "action", "sweep")} == {
        "id": 'tr"ain<x>', "job": 'tr"ain<x>', "module": "app/module/train", "status": "stale", "action": "run",
        "sweep": None}


def test_collapse_sweeps_merges_members_into_one_node_with_the_worst_state() -> None:
    def member(name: str, state: str) -> GraphNode:
        return GraphNode(name, name, "m", "stale" if state != "up-to-date" else "up-to-date", "run", state=state,
                         sweep={"job": "train", "point": {"lr": name}})

    nodes = (GraphNode("prep", "prep", "m", state="up-to-date"), member("train__lr_1", "up-to-date"),
             member("train__lr_2", "failed"), GraphNode("report", "report", "m", state="stale"))
    edges = (GraphEdge("prep", "train__lr_1", "d"), GraphEdge("prep", "train__lr_2", "d"),
             GraphEdge("train__lr_1", "report", "m1"), GraphEdge("train__lr_2", "report", "m2"))
    collapsed = collapse_sweeps(PipeGraph("p", nodes, edges))
    assert [n.id for n in collapsed.nodes] == ["prep", "train", "report"]
    train = collapsed.nodes[1]
    assert (train.state, train.status, train.sweep) == ("failed", "stale", {"job": "train", "members": 2})
    assert [(e.src, e.dst) for e in collapsed.edges] == [("prep", "train"), ("train", "report")]
    assert collapse_sweeps(PipeGraph("p", nodes[:1], ())) == PipeGraph("p", nodes[:1], ())
