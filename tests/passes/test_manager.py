"""The pass manager and the optimize pipeline: disabling, dumps, verification, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphc.ir import Graph, GraphBuilder, Node, Value, VerifyError, f32, interpret, parse
from graphc.passes import (
    PIPELINE,
    CompileReport,
    Pass,
    PipelineError,
    count,
    optimize,
    run_passes,
)
from tests.passes.helpers import normalize

TEXT = """
graph loss(%x: f32[4,3], %w: f32[3]) -> (f32[]) {
  %0 = mul %x, 1.0 : f32[4,3] loc("model.py":3)
  %1 = neg %w : f32[3] loc("model.py":4)
  %2 = neg %1 : f32[3] loc("model.py":4)
  %3 = add %0, %2 : f32[4,3] loc("model.py":5)
  %4 = add %0, %2 : f32[4,3] loc("model.py":5)
  %5 = mul %3, %4 : f32[4,3] loc("model.py":6)
  %6 = reduce_sum %5 {axes=(0,1)} : f32[] loc("model.py":7)
  return %6
}
"""


def graph() -> Graph:
    return parse(TEXT)


def test_pipeline_optimizes_and_reports() -> None:
    g = graph()
    out, report = optimize(g)
    assert normalize(str(out)) == normalize(
        """
        graph loss(%x: f32[4,3], %w: f32[3]) -> (f32[]) {
          %0 = add %x, %w : f32[4,3]
          %1 = mul %0, %0 : f32[4,3]
          %2 = reduce_sum %1 {axes=(0,1)} : f32[]
          return %2
        }"""
    )
    assert [p.name for p in report.passes] == [p.name for p in PIPELINE]
    assert report.counts["mul_one"] == 1
    assert report.counts["neg_neg"] == 1
    assert report.counts["merged"] == 1
    first, last = report.passes[0], report.passes[-1]
    assert first.nodes_before == 7 and last.nodes_after == 3
    assert all(p.seconds >= 0 for p in report.passes)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    w = np.array([1, -2, 0.5], np.float32)
    np.testing.assert_allclose(interpret(out, x, w)[0], interpret(g, x, w)[0], rtol=1e-6)


def test_report_prints_a_table() -> None:
    _, report = optimize(graph(), disabled=("simplify_after_cse",))
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "compile report for loss"
    assert lines[1].split() == ["pass", "ms", "nodes", "notes"]
    row = next(line for line in lines if line.strip().startswith("simplify "))
    assert "7 -> 4" in row and "mul_one x1" in row and "neg_neg x1" in row
    disabled = next(line for line in lines if "simplify_after_cse" in line)
    assert disabled.rstrip().endswith("disabled")
    assert lines[-1].split()[0] == "total"
    assert isinstance(report, CompileReport)


def test_disabling_a_pass_skips_it() -> None:
    out, report = optimize(graph(), disabled=("simplify", "simplify_after_cse"))
    assert report.counts.get("mul_one", 0) == 0
    assert any(n.op == "neg" for n in out.nodes)
    assert report.record("simplify") is None
    assert report.record("fold_constants") is not None


def test_unknown_pass_name_lists_the_valid_ones() -> None:
    with pytest.raises(PipelineError) as info:
        optimize(graph(), disabled=("simplfy",))
    message = str(info.value)
    assert "simplfy" in message
    for p in PIPELINE:
        assert p.name in message


def test_dump_writes_parseable_files(tmp_path: Path) -> None:
    out, _ = optimize(graph(), dump_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = ["00-input.gir"] + [f"{i:02d}-{p.name}.gir" for i, p in enumerate(PIPELINE, 1)]
    assert names == sorted(expected)
    last = parse((tmp_path / expected[-1]).read_text())
    assert last == out
    first = (tmp_path / "00-input.gir").read_text()
    assert parse(first) == graph()
    assert 'loc("model.py":3)' in first


def test_dump_directory_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHC_DUMP", str(tmp_path / "dumps"))
    optimize(graph(), disabled=("simplify",))
    files = sorted(p.name for p in (tmp_path / "dumps").iterdir())
    assert "03-simplify.gir" not in files  # disabled passes write nothing
    assert "02-fold_constants.gir" in files and "04-eliminate_common_subexpressions.gir" in files


def _broken(g: Graph) -> Graph:
    # A node whose result type contradicts its op's type rule.
    x = g.inputs[0]
    bad = Node("exp", (x,), (Value(f32[7]),), {})
    return Graph(g.name, g.inputs, (bad,), bad.outputs)


def test_verify_each_names_the_pass_that_broke_the_ir() -> None:
    passes = (Pass("fine", lambda g: g), Pass("breaks_types", _broken))
    run_passes(graph(), passes)  # without verification nothing notices
    with pytest.raises(VerifyError, match="after pass 'breaks_types'"):
        run_passes(graph(), passes, verify_each=True)


def test_verify_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHC_VERIFY", "1")
    with pytest.raises(VerifyError, match="breaks_types"):
        run_passes(graph(), [Pass("breaks_types", _broken)])


def test_pass_errors_say_which_pass_failed() -> None:
    def explode(g: Graph) -> Graph:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as info:
        run_passes(graph(), [Pass("explode", explode)])
    assert any("explode" in note for note in info.value.__notes__)


def test_passes_never_print(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    optimize(graph(), dump_dir=tmp_path, verify_each=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_count_outside_a_pass_manager_is_a_no_op() -> None:
    count("anything")  # must not raise
    b = GraphBuilder("f")
    x = b.input(f32[2], "x")

    def counting(g: Graph) -> Graph:
        count("seen", 2)
        count("seen")
        return g

    _, report = run_passes(b.build([x]), [Pass("counting", counting)])
    assert report.counts == {"seen": 3}
