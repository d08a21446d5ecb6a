"""The graphc command on model files: every example script states its example
inputs, and report/render/dump/bench compile it with the options given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.cli import main
from graphc.modelfile import load_entry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ["mlp_digits", "cnn_digits", "char_rnn", "transformer_tiny"]
HELPERS = ["common", "stdlib_text"]


def test_every_example_file_is_covered():
    assert sorted(MODELS + HELPERS) == sorted(p.stem for p in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", MODELS)
def test_each_example_reports_without_training(name, tmp_path, capsys):
    path = str(EXAMPLES / f"{name}.py")
    entry = load_entry(path)
    assert capsys.readouterr().out == ""  # importing trains nothing, prints nothing
    out = tmp_path / "report.html"
    assert main(["report", path, "-o", str(out), "--backend", "numpy"]) == 0
    page = out.read_text()
    assert f"Compile report: {entry.function.__name__}" in page and 'id="memory"' in page
    # the compiled function gives what the plain NumPy function gives
    expected = entry.function(*entry.args)
    got = gc.jit(entry.function, backend="numpy")(*entry.args)
    leaves = gc.pytree.tree_leaves
    for a, b in zip(leaves(got), leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", HELPERS)
def test_helper_modules_say_they_are_not_models(name, capsys):
    assert main(["dump", str(EXAMPLES / f"{name}.py")]) == 1
    assert "has no example_inputs() function" in capsys.readouterr().err


def test_render_dump_bench_and_options(tmp_path, capsys):
    model = str(EXAMPLES / "mlp_digits.py")
    svg = tmp_path / "g.svg"
    assert main(["render", f"{model}:forward", "-o", str(svg), "--backend", "llvm"]) == 0
    assert svg.read_text().lstrip().startswith("<?xml") and "fused group" in svg.read_text()
    assert main(["dump", f"{model}:forward", "--traced", "--backend", "numpy"]) == 0
    traced = capsys.readouterr().out
    assert traced.startswith("graph forward(") and "loc(" in traced
    # --disable keeps what the pass would remove; the text form round-trips
    assert main(["dump", model, "--disable", "simplify", "--backend", "numpy"]) == 0
    assert gc.ir.parse(capsys.readouterr().out).name == "loss_fn"
    dump_dir = tmp_path / "passes"
    assert main(["dump", model, "-o", str(dump_dir), "--backend", "numpy"]) == 0
    assert (dump_dir / "00-input.gir").exists()
    assert main(["bench", f"{model}:forward", "--repeat", "2", "--backend", "numpy"]) == 0
    assert "median" in capsys.readouterr().out
    assert main(["report", model, "--grad", "--budget", "1MB", "--backend", "numpy"]) == 0
    table = capsys.readouterr().out
    assert "rematerialize" in table  # the budget adds the remat pass
    assert main(["dump", model, "--disable", "no_such_pass"]) == 1
    assert "unknown pass name" in capsys.readouterr().err


def test_python_dash_m_graphc_report(tmp_path):
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "graphc", "report", str(EXAMPLES / "mlp_digits.py"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Per-pass table" in out.read_text()


def test_ir_files_through_the_compiling_commands(tmp_path, capsys):
    gc.jit(lambda x: np.sum(np.exp(x) * 2.0), backend="numpy", dump=tmp_path / "d")(np.ones(3))
    first = str(tmp_path / "d" / "00-input.gir")
    assert main(["report", first, "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Per-pass table" in page and "values placed" in page and "def " in page
    assert main(["render", first, "-o", str(tmp_path / "g.dot")]) == 0
    assert "exp" in (tmp_path / "g.dot").read_text()
    assert main(["dump", first, "-o", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "00-input.gir").exists()
    capsys.readouterr()
    assert main(["bench", first]) == 1
    assert "needs a model file" in capsys.readouterr().err
    assert main(["dump", first, "--grad"]) == 1


def test_optimize_a_model_with_its_gradient(capsys):
    model = str(EXAMPLES / "mlp_digits.py")
    assert main(["optimize", model, "--grad"]) == 0
    g = gc.ir.parse(capsys.readouterr().out)
    params = load_entry(model).args[0]
    # (loss, aux) and one gradient per parameter leaf
    assert len(g.outputs) == 2 + len(params)


def test_train_step_of_a_model_file(tmp_path, capsys):
    model = str(EXAMPLES / "mlp_digits.py")
    out = tmp_path / "train.html"
    assert main(["report", model, "--train", "-o", str(out), "--backend", "numpy"]) == 0
    page = out.read_text()
    assert "loss_fn_train_step" in page and "opt_state[&#39;m&#39;][&#39;w1&#39;]" in page
    assert main(["bench", model, "--train", "--repeat", "2", "--backend", "numpy"]) == 0
    assert "median" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["report", model, "--train", "--grad"])  # one or the other
