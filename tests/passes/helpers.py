"""IR-in/IR-out checking for pass tests.

``check_pass(pass_fn, before, after)`` parses ``before``, runs the pass,
compares the printed result with ``after`` (both dedented; runs of spaces are
collapsed so the printer's column alignment does not matter), verifies the
result, and checks on random inputs, special values included, that the
reference interpreter gives the same results for both graphs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import numpy as np

from graphc.ir import Graph, GraphcError, Value, get_op, interpret, parse, run_node, verify
from graphc.passes import Pass, run_passes

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 3.0, -2.5])


def normalize(text: str) -> str:
    """One statement per line, single spaces (a line starting with ':' continues
    the one before, so long statements can be wrapped in tests)."""
    lines: list[str] = []
    for line in textwrap.dedent(text).strip().splitlines():
        words = " ".join(line.split())
        if words.startswith(":") and lines:
            lines[-1] += " " + words
        else:
            lines.append(words)
    return "\n".join(lines)


def random_inputs(g: Graph, seed: int, special: bool = True) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for v in g.inputs:
        ty = v.type
        if ty.dtype.is_bool:
            a = rng.random(ty.shape) < 0.5
        elif ty.dtype.is_int:
            a = rng.integers(-5, 6, ty.shape)
        else:
            a = rng.normal(0, 2, ty.shape)
            if special and a.size:
                mask = rng.random(ty.shape) < 0.3
                a = np.where(mask, rng.choice(SPECIAL, ty.shape), a)
        out.append(np.asarray(a, dtype=ty.dtype.np))
    return out


def assert_same_results(
    expected: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...], float32_inside: bool = False
) -> None:
    """Equal shapes and dtypes; NaN, inf and zero signs in the same places;
    other floats close (rewrites such as x*x for pow(x, 2) may round differently).
    ``float32_inside``: the graph computes in float32 somewhere, so a float64
    result may carry a float32 rounding (LLVM's float32 functions are within
    about an ulp, NumPy's correctly rounded more often)."""
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.dtype, a.shape, b.dtype, b.shape)
        if a.dtype.kind != "f":
            np.testing.assert_array_equal(a, b)
            continue
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isinf(a) * np.sign(a), np.isinf(b) * np.sign(b))
        zero = (a == 0) & (b == 0)
        np.testing.assert_array_equal(np.signbit(a[zero]), np.signbit(b[zero]))
        rtol = 1e-5 if a.dtype == np.float32 or float32_inside else 1e-12
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True)


def interpret_live(g: Graph, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Like ``interpret``, but runs only the nodes the outputs depend on, so an
    error in dead code (which passes may remove) does not count. A node with
    effects (a collective) is live whether or not it is read, as in DCE."""
    needed = set(g.outputs)
    live = []
    for n in reversed(g.nodes):
        if any(v in needed for v in n.outputs) or not get_op(n.op).has("pure"):
            live.append(n)
            needed.update(n.value_inputs())
    env: dict[Value, np.ndarray] = dict(zip(g.inputs, arrays))
    for n in reversed(live):
        ins = [env[x] if isinstance(x, Value) else x.as_array() for x in n.inputs]
        env.update(zip(n.outputs, run_node(n, ins)))
    return tuple(env[v] for v in g.outputs)


def check_same_meaning(before: Graph, after: Graph, arrays: list[np.ndarray]) -> None:
    """Same results; where the original fails, the rewritten graph may fail
    the same way or (when a pass removed the failing computation) succeed."""
    try:
        expected = interpret_live(before, *arrays)
    except GraphcError as exc:
        try:
            interpret(after, *arrays)
        except GraphcError as again:
            assert isinstance(again, type(exc)), (exc, again)
        return
    assert_same_results(expected, interpret_live(after, *arrays))


def assert_same_meaning(before: Graph, after: Graph, trials: int = 4) -> None:
    for seed in range(trials):
        check_same_meaning(before, after, random_inputs(before, seed))


def check_pass(
    fn: Callable[[Graph], Graph], before: str, after: str, *, fired: dict[str, int] | None = None
) -> Graph:
    """Run ``fn`` on IR text ``before``; the result must print as ``after``.

    ``fired`` lists counters the pass must report (e.g. ``{"mul_one": 1}``).
    """
    g = parse(textwrap.dedent(before))
    out, report = run_passes(g, [Pass("under_test", fn)])
    assert normalize(str(out)) == normalize(after), f"got:\n{out}"
    verify(out)
    assert parse(str(out)) == out
    assert_same_meaning(g, out)
    if fired is not None:
        counts = report.passes[0].counts
        for name, k in fired.items():
            assert counts.get(name, 0) == k, f"{name}: expected {k}, counts {counts}"
    return out
