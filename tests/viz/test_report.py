"""The HTML compile report: one self-contained page, checked in headless Chromium,
whose tables say what the compile did."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest

import graphc as gc

from .browser import load

SECTIONS = ("summary", "timing", "graphs", "fused", "passes", "memory", "code")


def mlp(params, x):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return np.mean((h @ params["w2"]) ** 2)


PARAMS = {
    "w1": np.full((3, 4), 0.1, np.float32),
    "b1": np.zeros(4, np.float32),
    "w2": np.full((4, 2), 0.2, np.float32),
}
X = np.ones((2, 3), np.float32)


def compiled(backend):
    f = gc.jit(gc.value_and_grad(mlp), backend=backend)
    f(PARAMS, X)
    return f


def test_report_loads_in_chromium_without_console_errors(tmp_path):
    f = compiled("llvm")
    page = f.report.html(tmp_path / "report.html")
    text = page.read_text()
    # self-contained: nothing to fetch (the only URLs are XML namespaces)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    loaded = load(page)
    assert loaded.console == []
    for key in SECTIONS:
        assert f'id="{key}"' in loaded.dom
    assert loaded.dom.count("<svg") >= 3  # two graphs and the memory timeline
    fusions = sum(1 for n in f.optimized_graph.nodes if n.op == "fusion")
    assert loaded.dom.count('class="cluster fused"') == fusions > 0
    pixels = loaded.screenshot[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    assert (pixels.reshape(-1, 3) < 0.5).any(axis=1).mean() > 0.005  # some dark text drawn


def test_console_check_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><p>x</p><script>console.error('boom')</script></body></html>")
    assert any("boom" in line for line in load(page, (400, 300)).console)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_report_tables_match_the_compile(tmp_path, backend):
    f = compiled(backend)
    text = unescape(f.report.html(tmp_path / "r.html").read_text())
    report = f.lower(PARAMS, X).report
    # one row per pass, with its node counts and rewrite counters
    for p in report.passes:
        assert f"<td>{p.name}</td>" in text
        if not p.disabled:
            assert f"{p.nodes_before} → {p.nodes_after}" in text
            for rule, n in p.counts.items():
                assert f"{rule} ×{n}" in text
    plan = f.lower(PARAMS, X).stats["plan"]
    assert f"{len(plan.offsets)} values placed" in text
    # the summary shows the memory report: the plan against its lower bound
    memory = f.lower(PARAMS, X).memory
    assert "lower bound bytes" in text and "saved bytes" in text
    assert memory.lower_bound_bytes <= memory.plan_bytes
    # the largest values name the user line that made them (this file)
    assert "test_report.py:" in text and "in mlp" in text
    # a warm disk cache skips the passes and the planning: the page says so
    assert "tracing" in text
    assert ("pipeline loaded from cache" if report.from_cache else "memory planning") in text
    if backend == "numpy":
        assert "def " in text  # the generated Python function
    else:
        assert "define " in text and "codegen" in text


def test_collapsed_bodies_are_drawn_one_by_one(tmp_path):
    f = compiled("llvm")
    text = f.report.html(tmp_path / "small.html", max_nodes=10).read_text()
    fusions = [n for n in f.optimized_graph.nodes if n.op == "fusion"]
    assert f"drawn one by one ({len(fusions)})" in text
    assert text.count('<details class="body">') == len(fusions)
    # the full-size page draws them inside the graph instead
    full = f.report.html(tmp_path / "full.html").read_text()
    assert "drawn one by one" not in full


def test_report_without_graphviz_still_has_everything_else(tmp_path, monkeypatch):
    f = compiled("numpy")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program
    text = f.report.html(tmp_path / "r.html").read_text()
    assert text.count("Graph not drawn") == 2 and "apt-get install graphviz" in text
    for key in SECTIONS:
        assert f'id="{key}"' in text
