"""Drawn graphs: the SVG is well-formed, shows every node, and fused groups,
scan/cond bodies and remat regions appear as clusters holding their ops."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphc as gc
from graphc.viz import RenderError, dot_source

SVG = "{http://www.w3.org/2000/svg}"


def svg_groups(path):
    root = ET.parse(path).getroot()  # raises if the SVG is not well-formed XML
    groups = {}
    for g in root.iter(f"{SVG}g"):
        groups.setdefault(g.get("class", ""), []).append(g)
    return root, groups


def titles(elements):
    return [e.find(f"{SVG}title").text for e in elements]


def tooltips(elements):
    out = []
    for e in elements:
        link = e.find(f"{SVG}g/{SVG}a")
        out.append(link.get("{http://www.w3.org/1999/xlink}title") if link is not None else None)
    return out


def mlp(params, x):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return np.mean((h @ params["w2"]) ** 2)


PARAMS = {
    "w1": np.full((3, 4), 0.1, np.float32),
    "b1": np.zeros(4, np.float32),
    "w2": np.full((4, 2), 0.2, np.float32),
}
X = np.ones((2, 3), np.float32)


def test_fused_groups_are_clusters_with_their_inner_ops(tmp_path):
    f = gc.jit(gc.value_and_grad(mlp), backend="llvm")
    f(PARAMS, X)
    out = f.render(tmp_path / "g.svg")
    _, groups = svg_groups(out)
    fusions = [n for n in f.optimized_graph.nodes if n.op == "fusion"]
    assert fusions, "the LLVM pipeline should fuse this graph"
    fused = groups.get("cluster fused", [])
    assert len(fused) == len(fusions)
    # every op, inner ones included, is one SVG node; no fusion is drawn as a box
    ops = groups["node op"]
    inner = sum(len(n.subgraphs[0].nodes) for n in fusions)
    outer = sum(1 for n in f.optimized_graph.nodes if n.op != "fusion")
    assert len(ops) == inner + outer
    # tooltips carry the user's file:line (this file), labels dtype and shape
    tips = [t for t in tooltips(ops) if t]
    assert tips and all("test_render.py:" in t for t in tips)
    text = out.read_text()
    assert "f32[3,4]" in text
    # inputs and outputs by pytree path
    assert "params[&#39;w1&#39;]" in text and "output[1][&#39;b1&#39;]" in text


def test_traced_graph_shows_every_user_node(tmp_path):
    f = gc.jit(mlp, backend="numpy")
    f(PARAMS, X)
    out = f.render(tmp_path / "t.svg", optimized=False)
    _, groups = svg_groups(out)
    assert len(groups["node op"]) == len(f.graph.nodes)
    assert len(groups["node input"]) == 4 and len(groups["node output"]) == 1


def test_scan_cond_and_remat_bodies_are_clusters(tmp_path):
    block = gc.remat(lambda h: np.tanh(np.tanh(h) * 2.0))

    def f(x, xs):
        carry, ys = gc.scan(lambda c, v: (c * 0.5 + v, np.sin(c)), x, xs)
        y = gc.cond(carry.sum() > 0, lambda a: a * 2.0, lambda a: -a, carry)
        return block(y).sum() + ys.sum()

    g = gc.trace(f, np.ones(3), np.ones((4, 3)))
    ops = {n.op for n in g.nodes}
    assert {"scan", "cond", "remat"} <= ops
    out = g.render(tmp_path / "c.svg")
    _, groups = svg_groups(out)
    bodies = groups.get("cluster body", [])
    assert len(bodies) == 3  # the scan body and both branches
    assert len(groups.get("cluster remat", [])) == 1
    # every node of the graph and of its bodies is drawn once
    drawn = len(groups["node op"])
    remat_boxes = sum(1 for n in g.nodes if n.op == "remat")
    assert drawn == g.num_nodes(recursive=True) - remat_boxes
    # above the size limit a body is one box that says how much is inside
    small = gc.viz.svg(g, expand=1)
    assert "inner nodes" in small and "cluster body" not in small


def test_dot_needs_nothing_installed_and_bad_formats_are_errors(tmp_path, monkeypatch):
    g = gc.trace(lambda x: np.exp(x) * 2.0, np.ones(2))
    text = g.render(tmp_path / "g.dot").read_text()
    assert text == dot_source(g) + "\n"
    with pytest.raises(RenderError, match="unknown format 'gif'"):
        g.render(tmp_path / "g.gif")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program anywhere
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        g.render(tmp_path / "g.svg")


def test_large_graphs_collapse_to_source_lines():
    def chain(x):
        for _ in range(40):
            x = np.tanh(x) * 0.5 + 0.1  # three ops per pass, all on this line
        return x.sum()

    g = gc.trace(chain, np.ones(3))
    assert len(g.nodes) > 100
    full = dot_source(g)
    assert full.count('class="op"') == len(g.nodes)
    small = dot_source(g, max_nodes=50)
    assert "one box per source line" in small
    # the loop body's line and the sum's line: two boxes, each naming its ops
    assert small.count('class="op line"') == 2 and "tanh x40" in small
