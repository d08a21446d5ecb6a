"""The benchmark harness: its hand-written NumPy baselines compute the right gradients,
its cross-check catches a wrong implementation, its CLI reports every entry, and its
memory probe measures what a step really holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import memory, report
from benchmarks.core import Problem, Runner, Workload
from benchmarks.graphc_entries import is_opt_in
from benchmarks.harness import check_workload
from benchmarks.workloads import (
    WORKLOADS,
    w1_mlp_digits,
    w2_mlp_wide,
    w3_elementwise,
    w4_deep_tanh,
    w5_char_rnn,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Recorder:
    """Stands in for the NumPy optimizer and keeps the gradients it is handed."""

    def __init__(self, params, hyper):
        self.grads = None

    def update(self, params, grads):
        self.grads = {k: g.copy() for k, g in grads.items()}

    def reset(self):
        pass


def _directional_fd(loss, params, batch, direction, eps=1e-6):
    """Central difference of `loss` along `direction` in float64; a small step, so that few
    ReLU units change sides."""
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    batch64 = tuple(b.astype(np.float64) if b.dtype.kind == "f" else b for b in batch)
    plus = {k: v + eps * direction[k] for k, v in p64.items()}
    minus = {k: v - eps * direction[k] for k, v in p64.items()}
    return (loss(plus, *batch64) - loss(minus, *batch64)) / (2 * eps), loss(p64, *batch64)


def _first_step_grads(module, problem, monkeypatch):
    recorders = []

    def make(kind, params, hyper):
        recorders.append(_Recorder(params, hyper))
        return recorders[-1]

    monkeypatch.setattr(module, "numpy_optimizer", make)
    runner = module.numpy_impl(problem)
    value = float(runner.step())
    return value, recorders[0].grads


@pytest.mark.parametrize("module", [w1_mlp_digits, w2_mlp_wide, w5_char_rnn])
def test_numpy_baseline_gradients_match_finite_differences(module, monkeypatch):
    problem = module.make_problem(True)
    value, grads = _first_step_grads(module, problem, monkeypatch)
    rng = np.random.default_rng(0)
    direction = {k: rng.standard_normal(v.shape) for k, v in problem.params.items()}
    fd, exact_value = _directional_fd(module.loss, problem.params, problem.batches[0], direction)
    analytic = sum(float(np.vdot(grads[k], direction[k])) for k in grads)
    assert value == pytest.approx(exact_value, rel=1e-5)
    assert analytic == pytest.approx(fd, rel=1e-3)


def test_numpy_baseline_w4_update_is_sgd_on_the_true_gradient():
    problem = w4_deep_tanh.make_problem(True)
    runner = w4_deep_tanh.numpy_impl(problem)
    value = float(runner.step())
    lr = problem.hyper["lr"]
    grads = {k: (problem.params[k] - v) / lr for k, v in runner.state().items()}
    rng = np.random.default_rng(1)
    direction = {k: rng.standard_normal(v.shape) for k, v in problem.params.items()}
    fd, exact_value = _directional_fd(
        w4_deep_tanh.loss, problem.params, problem.batches[0], direction
    )
    analytic = sum(float(np.vdot(grads[k], direction[k])) for k in grads)
    assert value == pytest.approx(exact_value, rel=1e-5)
    assert analytic == pytest.approx(fd, rel=1e-3)


def test_numpy_baseline_w3_value_and_gradient():
    problem = w3_elementwise.make_problem(True)
    runner = w3_elementwise.numpy_impl(problem)
    value = float(runner.step())
    x = problem.batches[0][0].astype(np.float64)

    def summand(x):
        return np.tanh(x) / (1 + np.exp(-2 * x)) + 0.5 * x * x - np.exp(-x * x)

    h = 1e-6
    fd = (summand(x + h) - summand(x - h)) / (2 * h)
    assert value == pytest.approx(summand(x).sum(), rel=1e-5)
    np.testing.assert_allclose(runner.state()["grad"], fd, rtol=1e-4, atol=1e-5)


def test_reset_replays_the_same_training_steps():
    problem = w1_mlp_digits.make_problem(True)
    runner = w1_mlp_digits.numpy_impl(problem)
    first = [float(runner.step()) for _ in range(3)]
    runner.reset()
    again = [float(runner.step()) for _ in range(3)]
    assert first == again
    assert first[0] != first[2]


def test_cross_check_flags_an_implementation_that_computes_something_else():
    def wrong_lr(problem):
        changed = Problem(problem.params, problem.batches, dict(problem.hyper, lr=0.02))
        return w2_mlp_wide.numpy_impl(changed)

    def wrong_loss(problem):
        inner = w2_mlp_wide.numpy_impl(problem)
        return Runner(step=lambda: inner.step() * 1.01, reset=inner.reset, state=inner.state)

    def scaled(factor):
        def make(problem):
            inner = w2_mlp_wide.numpy_impl(problem)
            return Runner(step=lambda: inner.step() * factor, reset=inner.reset, state=inner.state)

        return make

    workload = Workload(
        name="T",
        title="test",
        make_problem=w2_mlp_wide.make_problem,
        impls={
            "numpy": w2_mlp_wide.numpy_impl,
            "same": w2_mlp_wide.numpy_impl,
            "wrong-lr": wrong_lr,
            "wrong-loss": wrong_loss,
            # a 16-bit entry is held to bfloat16's tolerance: rounding passes, errors do not
            "close-bf16": scaled(1.001),
            "wrong-bf16": scaled(1.02),  # 2% on the loss
        },
    )
    problem = w2_mlp_wide.make_problem(True)
    names = ["same", "wrong-lr", "wrong-loss", "close-bf16", "wrong-bf16"]
    results = check_workload(workload, problem, names, steps=3, rtol=1e-4)
    assert results["same"].check["ok"]
    assert results["same"].check["state_rel_err"] == 0.0
    assert not results["wrong-lr"].check["ok"]
    assert results["wrong-lr"].check["loss_rel_err"] > 1e-4  # steps 2 and 3 differ
    assert not results["wrong-loss"].check["ok"]
    assert results["wrong-loss"].check["loss_rel_err"] == pytest.approx(0.01, rel=1e-3)
    assert results["close-bf16"].check["ok"]
    assert results["close-bf16"].check["rtol"] == {"loss": 1e-2, "state": 0.1}
    assert not results["wrong-bf16"].check["ok"]


def test_cli_quick_run_reports_every_entry_and_compares(tmp_path, capsys):
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--impls", "numpy,graphc"]
    cmd += ["--workloads", "W3,W4", "--no-memory", "--repeat", "2", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    assert list(payload["workloads"]) == ["W3", "W4"]
    for name in ("W3", "W4"):
        wl = WORKLOADS[name]
        entries = payload["workloads"][name]["entries"]
        graphc = [i for i in wl.impls if i.startswith("graphc") and not is_opt_in(i)]
        expected = ["numpy", *graphc]
        assert list(entries) == expected
        assert entries["numpy"]["status"] == "ok"
        assert len(entries["numpy"]["samples_s"]) == 2
        assert entries["numpy"]["median_s"] > 0
        for entry in entries.values():
            assert entry["status"] in ("ok", "unavailable", "failed")
            assert entry["status"] == "ok" or entry["reason"]
            assert f"  {entry['name']}" in proc.stdout
    assert "threads: budget" in proc.stdout

    report.compare(str(out), str(out))
    printed = capsys.readouterr().out
    assert "W3" in printed and " 1.00 " in printed


def test_cli_skips_an_implementation_a_workload_lacks_and_rejects_unknown_ones():
    from benchmarks.cli import _select

    assert _select("graphc-llvm-ts,numpy", ["numpy", "graphc-llvm"], "x", strict=False) == ["numpy"]
    with pytest.raises(SystemExit, match="unknown implementation 'nope'"):
        _select("nope", ["numpy"], "implementation")
    # W3 has no train-step entry, W5 has: W3 is skipped, W5 runs.
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--impls", "numpy-ts,numpy"]
    cmd += ["--workloads", "W3,W5", "--no-memory", "--repeat", "1", "--no-json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "unknown implementation 'numpy-ts'" in proc.stderr
    cmd[cmd.index("numpy-ts,numpy")] = "graphc-numpy-ts,numpy"
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "W3" in proc.stdout and "W5" in proc.stdout
    assert "graphc-numpy-ts" in proc.stdout.split("W5", 1)[1]


def test_memory_probe_charges_the_buffers_a_step_uses_to_the_step():
    # W3's NumPy baseline allocates five arrays the size of its input when built and
    # nothing per step beyond a scalar. Allocated untouched, they become resident only
    # when the first step writes them: the step's own memory (peak RSS minus RSS just
    # before the first step) holds them, what building left resident does not.
    result = memory.probe("W3", "numpy", threads=1, quick=False)
    buffers = 5 * w3_elementwise.SIZE * 4
    assert result["step"] == pytest.approx(buffers, rel=0.05)
    assert 0 <= result["state"] < 0.05 * buffers
    assert result["peak"] == result["state"] + result["step"]
    assert result["ahead_of_time"] is False


def test_jvp_cost_measures_every_workload_on_both_backends(capsys):
    from benchmarks import jvp_cost

    rows = jvp_cost.measure(quick=True, repeat=2, backends=["numpy", "llvm"])
    assert [(r["workload"], r["backend"]) for r in rows] == [
        ("W1 loss", "numpy"),
        ("W1 loss", "llvm"),
        ("W3", "numpy"),
        ("W3", "llvm"),
    ]
    for r in rows:
        assert r["jvp / primal"] > 0 and r["jvp nodes"] > r["primal nodes"]
    jvp_cost.main(["--quick", "--repeat", "1", "--backends", "numpy"])
    assert "jvp / primal" in capsys.readouterr().out
