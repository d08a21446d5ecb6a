"""debug_nans / debug_infs: the first op that made a NaN, its operands and line."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import graphc as gc
from graphc.debug import DebugJitted
from graphc.jit import Jitted

BACKENDS = ["numpy", "llvm"]


def three_deep(x):
    a = np.exp(x)
    b = a - 2.0
    c = np.log(b)  # NaN where exp(x) < 2
    return (c * 3.0).sum()


LOG_LINE = inspect.getsourcelines(three_deep)[1] + 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_names_the_first_op_its_operands_and_line(backend):
    f = gc.jit(three_deep, backend=backend, debug_nans=True)
    assert f(np.array([1.0, 2.0])) == pytest.approx(three_deep(np.array([1.0, 2.0])))
    x = np.array([0.1, 2.0])
    with pytest.raises(gc.NaNError) as info:
        f(x)
    err = info.value
    assert isinstance(err, gc.GraphcError) and isinstance(err, FloatingPointError)
    text = str(err)
    assert "first op to produce it: log" in text
    assert f"test_debug_nans.py:{LOG_LINE} in three_deep" in text and "np.log(b)" in text
    b = np.exp(x) - 2.0
    assert f"range [{b.min():.6g}, {b.max():.6g}]" in text
    assert "from sub" in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_infinities_point_at_the_forward_line(backend):
    def f(x):
        y = x * x - 1.0
        return np.sqrt(y).sum()  # its derivative is infinite where y == 0

    line = inspect.getsourcelines(f)[1] + 2
    g = gc.jit(gc.grad(f), backend=backend, debug_infs=True)
    np.testing.assert_allclose(g(np.array([2.0])), [2.0 / np.sqrt(3.0)])
    with pytest.raises(gc.NaNError, match="NaN or inf") as info:
        g(np.array([1.0]))
    text = str(info.value)
    assert f"test_debug_nans.py:{line} in f (vjp)" in text
    # without debug_infs an infinity alone is not flagged
    assert np.isinf(gc.jit(gc.grad(f), backend=backend, debug_nans=True)(np.array([1.0])))[0]


def test_looks_inside_remat_regions():
    block = gc.remat(lambda h: np.sqrt(h - 1.0) * 2.0)
    f = gc.jit(lambda x: block(np.tanh(x)).sum(), backend="numpy", debug_nans=True)
    with pytest.raises(gc.NaNError, match=r"sqrt .*\(inside remat\)"):
        f(np.array([0.5]))


def test_nan_arguments_pass_through_and_off_means_plain_jit(monkeypatch):
    f = gc.jit(three_deep, backend="numpy", debug_nans=True)
    assert np.isnan(f(np.array([np.nan, 1.0])))  # the NaN came in with the argument
    monkeypatch.delenv("GRAPHC_DEBUG_NANS", raising=False)
    assert type(gc.jit(three_deep)) is Jitted
    monkeypatch.setenv("GRAPHC_DEBUG_NANS", "1")
    from_env = gc.jit(three_deep, backend="numpy")
    assert isinstance(from_env, DebugJitted)
    with pytest.raises(gc.NaNError):
        from_env(np.array([0.0]))
    assert type(gc.jit(three_deep, debug_nans=False)) is Jitted


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_generated_code_is_the_same(backend):
    x = np.array([1.0, 2.0])
    plain, checked = (
        gc.jit(three_deep, backend=backend),
        gc.jit(three_deep, backend=backend, debug_nans=True),
    )
    plain(x), checked(x)
    if backend == "numpy":
        # equal up to the file name each compile gets (<graphc-numpy-N>)
        key = re.compile(r"<graphc-numpy-\d+>")
        assert key.sub("", plain.source) == key.sub("", checked.source)
    else:
        assert plain.llvm_ir == checked.llvm_ir


def test_train_step_with_donated_state():
    def loss(p, x):
        return np.mean(np.log(x @ p))

    step = gc.train_step(loss, gc.optim.SGD(0.1), backend="numpy", debug_nans=True)
    state = step.init(np.ones(2))
    state, value = step(state, np.ones((2, 2)))
    assert np.isfinite(value)
    with pytest.raises(gc.NaNError, match="first op to produce it: log"):
        step(state, -np.ones((2, 2)))


def test_looks_inside_the_branch_taken():
    def f(x):
        return gc.cond(x.sum() > 0, lambda a: np.log(a - 5.0), lambda a: a * 2.0, x).sum()

    g = gc.jit(f, backend="numpy", debug_nans=True)
    assert g(np.array([-1.0])) == -2.0
    with pytest.raises(gc.NaNError, match=r"log .*\(inside cond\)"):
        g(np.array([1.0]))


def test_looks_inside_the_scan_step_that_made_it():
    def f(x, xs):
        # the carry shrinks by one each step; its sqrt is NaN from the step it goes negative
        carry, ys = gc.scan(lambda c, v: (c - 1.0, np.sqrt(c) * v), x, xs)
        return ys.sum()

    g = gc.jit(f, backend="numpy", debug_nans=True)
    assert np.isfinite(g(np.array([5.0]), np.ones((4, 1))))
    with pytest.raises(gc.NaNError, match=r"sqrt .*\(inside scan step 3\)"):
        g(np.array([2.5]), np.ones((4, 1)))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_looks_inside_the_while_step_that_made_it(backend):
    def f(x):
        # log of a value that goes negative in the second step
        y, _ = gc.while_loop(lambda c: c[1] < 4, lambda c: (np.log(c[0] - 0.5), c[1] + 1), (x, 0))
        return y

    g = gc.jit(f, backend=backend, debug_nans=True)
    with pytest.raises(gc.NaNError, match=r"log .*\(inside while step 1\)") as info:
        g(np.array([2.0, 1.9]))
    assert "test_debug_nans.py" in str(info.value)
