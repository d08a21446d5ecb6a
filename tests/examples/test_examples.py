"""The example scripts: quick runs with tiny settings, and full runs against their targets.

The quick runs check that each script trains through ``gc.train_step`` on
every backend and reports its metric; the full runs (``make test-slow``) use
the scripts' default settings and check the targets the examples promise.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ..training.compiled import BACKENDS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPILED = [b for b in BACKENDS if b != "interpret"] or BACKENDS


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"graphc_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_sys_path():
    saved = list(sys.path)
    yield
    sys.path[:] = saved


# -- quick runs --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_mlp_digits_quick(backend, capsys, tmp_path) -> None:
    result = load("mlp_digits").main(
        ["--backend", backend, "--epochs", "2", "--quiet", "--plot", str(tmp_path / "loss.png")]
    )
    out = capsys.readouterr().out
    assert "== the traced loss function ==\ngraph loss_fn(" in out
    assert "forward, backward and Adam in one graph ==\ngraph loss_fn_train_step(" in out
    assert f"backend {backend}" in out and f"test accuracy {result['accuracy']:.4f}" in out
    assert (
        len(result["history"].records) == 2
        and result["history"].loss[1] < result["history"].loss[0]
    )
    assert result["accuracy"] > 0.5  # two epochs are far above chance (0.1)
    assert (tmp_path / "loss.png").exists()


def test_mlp_digits_without_ir(capsys) -> None:
    load("mlp_digits").main(["--backend", BACKENDS[0], "--epochs", "1", "--quiet", "--no-ir"])
    assert "graph " not in capsys.readouterr().out


def test_mlp_digits_checkpoint_resumes(tmp_path, capsys) -> None:
    mlp = load("mlp_digits")
    args = ["--backend", BACKENDS[0], "--quiet", "--no-ir", "--checkpoint-dir", str(tmp_path)]
    first = mlp.main([*args, "--epochs", "2"])
    resumed = mlp.main([*args, "--epochs", "3"])
    straight = mlp.main(["--backend", BACKENDS[0], "--quiet", "--no-ir", "--epochs", "3"])
    assert resumed["history"].loss[:2] == first["history"].loss
    assert resumed["history"].loss == straight["history"].loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_cnn_digits_quick(backend, capsys) -> None:
    result = load("cnn_digits").main(["--backend", backend, "--epochs", "1", "--batch-size", "128"])
    out = capsys.readouterr().out
    assert f"backend {backend}" in out and f"test accuracy {result['accuracy']:.4f}" in out
    assert result["accuracy"] > 0.2


CHAR_QUICK = ["--chars", "6000", "--seq-len", "12", "--batch-size", "16", "--epochs", "1"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_char_rnn_quick(backend, capsys) -> None:
    args = [*CHAR_QUICK, "--embed", "8", "--hidden", "16", "--sample", "40"]
    result = load("char_rnn").main(["--backend", backend, *args])
    out = capsys.readouterr().out
    assert "unigram entropy" in out and f"held-out {result['bits_per_char']:.3f} bits/char" in out
    assert result["sample"].startswith("def ") and len(result["sample"]) == 44
    assert math.isfinite(result["bits_per_char"]) and 3.0 < result["unigram_bits"] < 6.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_tiny_quick(backend, capsys) -> None:
    args = [*CHAR_QUICK, "--width", "16", "--heads", "2", "--blocks", "1", "--dropout", "0.1"]
    result = load("transformer_tiny").main(["--backend", backend, *args, "--sample", "20"])
    out = capsys.readouterr().out
    assert f"held-out {result['bits_per_char']:.3f} bits/char" in out
    assert result["sample"].startswith("def ") and len(result["sample"]) == 24


def test_stdlib_corpus_is_deterministic_python_source() -> None:
    text = load("stdlib_text")
    a, b = text.load_corpus(20_000), text.load_corpus(20_000)
    assert a == b and len(a) == 20_000 and "def " in a and "import " in a
    vocab = text.Vocab(a)
    assert vocab.decode(vocab.encode(a[:500])) == a[:500]
    ids = vocab.encode(a)
    counts = np.bincount(ids) / len(ids)
    counts = counts[counts > 0]
    assert text.unigram_entropy(ids, len(vocab)) == pytest.approx(-(counts * np.log2(counts)).sum())
    x, y = text.windows(ids, 10)
    assert np.array_equal(x[:, 1:], y[:, :-1]) and np.array_equal(x[1:, 0], y[:-1, -1])


def test_the_example_dropout_uses_the_compiled_rng(capsys) -> None:
    # The transformer's residual dropout draws inside the compiled step, so the
    # same seed gives the same run on any backend.
    t = load("transformer_tiny")
    args = [*CHAR_QUICK, "--width", "16", "--heads", "2", "--blocks", "1", "--sample", "0"]
    runs = [t.main(["--backend", b, *args, "--dropout", "0.2"]) for b in BACKENDS]
    for other in runs[1:]:
        assert other["bits_per_char"] == pytest.approx(runs[0]["bits_per_char"], rel=1e-4)
    without = t.main(["--backend", BACKENDS[0], *args, "--dropout", "0.0"])
    assert without["bits_per_char"] != pytest.approx(runs[0]["bits_per_char"], rel=1e-4)


# -- full runs (make test-slow) -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", COMPILED)
def test_mlp_digits_reaches_97_percent(backend) -> None:
    result = load("mlp_digits").main(["--backend", backend, "--quiet", "--no-ir"])
    assert result["accuracy"] >= 0.97


@pytest.mark.slow
@pytest.mark.parametrize("backend", COMPILED)
def test_cnn_digits_reaches_97_percent(backend) -> None:
    result = load("cnn_digits").main(["--backend", backend, "--quiet"])
    assert result["accuracy"] >= 0.97


@pytest.mark.slow
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", ["char_rnn", "transformer_tiny"])
def test_text_models_fall_well_below_the_unigram_entropy(name, backend) -> None:
    result = load(name).main(["--backend", backend, "--quiet", "--sample", "100"])
    assert result["bits_per_char"] < 0.65 * result["unigram_bits"]
