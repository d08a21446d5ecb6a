"""Every registered op has a lowering or a decomposition in every backend,
and every decomposition is really applied by that backend's compile()."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc as gc
from graphc.backends import backend_names, get_backend
from graphc.ir import Graph, GraphBuilder, UnsupportedError, all_ops, bool_, f64, interpret


@pytest.mark.parametrize("name", backend_names())
def test_every_op_has_a_lowering_or_a_decomposition(name: str) -> None:
    backend = get_backend(name)
    lowered, decomposed = set(backend.LOWERINGS), set(backend.DECOMPOSITIONS)
    missing = sorted(op for op in all_ops() if op not in lowered | decomposed)
    assert not missing, f"backend '{name}' has neither a lowering nor a decomposition for {missing}"


@pytest.mark.parametrize("name", backend_names())
def test_tables_name_only_registered_ops(name: str) -> None:
    backend = get_backend(name)
    unknown = (set(backend.LOWERINGS) | set(backend.DECOMPOSITIONS)) - set(all_ops())
    assert not unknown, f"backend '{name}' lowers ops that are not registered: {sorted(unknown)}"


@pytest.mark.parametrize("name", backend_names())
def test_backend_module_protocol(name: str) -> None:
    backend = get_backend(name)
    assert callable(backend.compile)
    assert backend is get_backend(name)


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnsupportedError, match="numpy"):
        get_backend("cuda")


# -- graphs holding one op that some backend decomposes --------------------------------------
# Each returns a graph over (x: f64[3, 4], y: f64[3, 4], p: bool[]) whose result
# depends on the op's subgraph(s), so a rewrite that dropped or misplaced them shows.


def _body(name: str) -> Graph:
    b = GraphBuilder(name)
    x, y = b.input(f64[3, 4], "x"), b.input(f64[3, 4], "y")
    return b.build([b.add(b.mul(b.tanh(x), y), 1.0)])


def _graph(make: Callable[[GraphBuilder, object, object, object], object]) -> Graph:
    b = GraphBuilder("g")
    x, y, p = b.input(f64[3, 4], "x"), b.input(f64[3, 4], "y"), b.input(bool_[()], "p")
    return b.build([b.mul(make(b, x, y, p), 2.0)])


def _fusion() -> Graph:
    return _graph(lambda b, x, y, p: b.emit("fusion", x, y, subgraphs=[_body("body")]))


def _remat() -> Graph:
    return _graph(lambda b, x, y, p: b.emit("remat", x, y, subgraphs=[_body("body")]))


def _barrier() -> Graph:
    def make(b: GraphBuilder, x: object, y: object, p: object) -> object:
        u, v = b.emit("optimization_barrier", b.exp(x), y)
        return b.sub(u, v)

    return _graph(make)


def _rsqrt() -> Graph:
    return _graph(lambda b, x, y, p: b.rsqrt(b.add(b.mul(x, x), 0.5)))


def _cond() -> Graph:
    other = GraphBuilder("other")
    x, y = other.input(f64[3, 4], "x"), other.input(f64[3, 4], "y")
    other_g = other.build([other.sub(x, y)])
    return _graph(lambda b, x, y, p: b.emit("cond", p, x, y, subgraphs=[_body("then"), other_g]))


def _scan() -> Graph:
    # carry c: f64[4], xs: the rows of x, const y's first row; ys: every step's carry.
    body = GraphBuilder("step")
    c, row, k = body.input(f64[4], "c"), body.input(f64[4], "row"), body.input(f64[4], "k")
    new = body.add(body.mul(body.tanh(c), k), row)
    step = body.build([new, body.mul(new, 3.0)])

    def make(b: GraphBuilder, x: object, y: object, p: object) -> object:
        first = b.reshape(b.slice(y, start=(0, 0), limit=(1, 4), stride=(1, 1)), shape=(4,))
        carry, ys = b.emit(
            "scan",
            first,
            x,
            first,
            subgraphs=[step],
            length=3,
            num_carry=1,
            num_xs=1,
            num_consts=1,
            reverse=True,
        )
        return b.add(ys, carry)

    return _graph(make)


def _polygamma() -> Graph:
    return _graph(lambda b, x, y, p: b.polygamma(b.add(b.abs(x), 0.5), n=2))


def _expm() -> Graph:
    # tests/numerics/test_matfun.py checks larger norms (squarings) with their own tolerance
    def make(b: GraphBuilder, x: object, y: object, p: object) -> object:
        return b.expm(b.mul(b.matmul(x, b.transpose(y, perm=(1, 0))), 0.5))

    return _graph(make)


def _gammainc_grad_a() -> Graph:
    return _graph(lambda b, x, y, p: b.gammainc_grad_a(b.add(b.abs(x), 0.5), b.abs(y)))


def _betainc_grad() -> Graph:
    def make(b: GraphBuilder, x: object, y: object, p: object) -> object:
        u = b.sigmoid(b.add(x, y))
        da, db = b.betainc_grad(b.add(b.abs(x), 0.5), b.add(b.abs(y), 0.2), u)
        return b.sub(da, db)

    return _graph(make)


MAKERS: dict[str, Callable[[], Graph]] = {
    "expm": _expm,
    "polygamma": _polygamma,
    "gammainc_grad_a": _gammainc_grad_a,
    "betainc_grad": _betainc_grad,
    "fusion": _fusion,
    "remat": _remat,
    "optimization_barrier": _barrier,
    "rsqrt": _rsqrt,
    "cond": _cond,
    "scan": _scan,
}


@pytest.mark.parametrize("name", backend_names())
def test_every_decomposition_has_a_test_graph(name: str) -> None:
    unknown = set(get_backend(name).DECOMPOSITIONS) - set(MAKERS)
    assert not unknown, f"add a graph for {sorted(unknown)} to MAKERS"


CASES = [(name, op) for name in backend_names() for op in sorted(get_backend(name).DECOMPOSITIONS)]


@pytest.mark.parametrize(("name", "op"), CASES)
@pytest.mark.parametrize("pred", [True, False])
def test_decomposition_is_applied_by_compile(name: str, op: str, pred: bool) -> None:
    g = MAKERS[op]()
    assert op in {n.op for n in g.nodes}
    rng = np.random.default_rng(len(op))
    args = (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.array(pred))
    got = get_backend(name).compile(g)(*args)
    want = interpret(g, *args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-14)


# -- the same through jit, with the pipeline pass that would remove the op turned off --------


@gc.remat
def _block(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.tanh(x @ w) * 2.0


def _loss(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    h = _block(_block(x, w), w)
    return (h * h).sum()


def _scanned(x: np.ndarray) -> np.ndarray:
    def step(c: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.tanh(c) + row
        return c, c * 2.0

    c, ys = gc.scan(step, x[0] * 0.0, x)
    return ys.sum(axis=0) + gc.cond(c.sum() > 0, lambda v: v * 3.0, lambda v: -v, c)


@pytest.mark.parametrize("name", backend_names())
@pytest.mark.parametrize("skipped", ["inline_remat", "remove_barriers"])
def test_jit_with_a_pass_disabled_on_a_remat_function(name: str, skipped: str) -> None:
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((8, 8)) * 0.3, rng.standard_normal((4, 8))
    step = gc.value_and_grad(_loss)
    want = step(w, x)
    got = gc.jit(step, backend=name, disable_passes=(skipped,))(w, x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("skipped", ["fuse", "schedule_for_memory"])
def test_jit_llvm_scan_and_cond_with_a_lowering_pass_disabled(skipped: str) -> None:
    x = np.random.default_rng(1).standard_normal((5, 3))
    want = _scanned(x)
    got = gc.jit(_scanned, backend="llvm", disable_passes=(skipped,))(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
