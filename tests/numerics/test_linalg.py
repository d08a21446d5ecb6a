"""np.linalg and scipy.linalg solvers against NumPy/SciPy (interpreter, both
backends, float64 and float32, batched), gradients against finite
differences, and singular / indefinite input raising LinAlgError at the
user's line on every path."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.linalg as sl

import graphc as gc

from .helpers import check_all, raises_at_line

pytestmark = pytest.mark.usefixtures("private_llvm_cache")

RNG = np.random.default_rng(5)
M = RNG.normal(size=(2, 3, 3))
SPD = M @ np.swapaxes(M, -1, -2) + 3 * np.eye(3)
A = RNG.normal(size=(2, 3, 3)) + 3 * np.eye(3)
B = RNG.normal(size=(2, 3, 2))
V = RNG.normal(size=3)


def _spd(x: np.ndarray) -> np.ndarray:
    return x @ np.swapaxes(x, -1, -2) + 3 * np.eye(x.shape[-1])


FORWARD = {
    "solve": lambda a, s, b, v: np.linalg.solve(a, b),
    "solve_vector": lambda a, s, b, v: np.linalg.solve(a[0], v),
    "inv": lambda a, s, b, v: np.linalg.inv(a),
    "det": lambda a, s, b, v: np.linalg.det(a),
    "slogdet": lambda a, s, b, v: tuple(np.linalg.slogdet(a)),
    "cholesky": lambda a, s, b, v: np.linalg.cholesky(s),
    "eigvalsh": lambda a, s, b, v: np.linalg.eigvalsh(s),
    # eigenvectors up to sign: compare V diag(w) V^T
    "eigh": lambda a, s, b, v: (lambda w, q: (q * w[..., None, :]) @ np.swapaxes(q, -1, -2))(
        *np.linalg.eigh(s)
    ),
    "matrix_power": lambda a, s, b, v: np.linalg.matrix_power(a, 3),
    "matrix_power_neg": lambda a, s, b, v: np.linalg.matrix_power(a[0], -2),
    "solve_triangular": lambda a, s, b, v: sl.solve_triangular(np.tril(a[0]), b[0], lower=True),
    "solve_triangular_t": lambda a, s, b, v: sl.solve_triangular(np.triu(a[1]), v, trans=1),
    "cho_solve": lambda a, s, b, v: sl.cho_solve(sl.cho_factor(s[0]), b[0]),
    "cho_solve_lower": lambda a, s, b, v: sl.cho_solve(sl.cho_factor(s[1], lower=True), v),
    "lu_factor": lambda a, s, b, v: sl.lu_factor(a[0]),
    "lu_solve": lambda a, s, b, v: sl.lu_solve(sl.lu_factor(a[1]), b[1]),
    "lu_solve_t": lambda a, s, b, v: sl.lu_solve(sl.lu_factor(a[0]), v, trans=1),
    "svd": lambda a, s, b, v: tuple(np.linalg.svd(b)),
    "svd_values": lambda a, s, b, v: np.linalg.svd(a, compute_uv=False),
    # tall: the workspace grows with max(m, n) (LAPACK documents 4k^2 + 6k + max(m, n))
    "svd_tall": lambda a, s, b, v: (lambda u, w, vt: (u * w) @ vt)(
        *np.linalg.svd(np.sin(np.arange(130.0)[:, None] * np.arange(1.0, 8.0) + a[0, 0, 0]), False)
    ),
    "qr": lambda a, s, b, v: tuple(np.linalg.qr(b, mode="complete")),
    "pinv": lambda a, s, b, v: np.linalg.pinv(b),
    "lstsq": lambda a, s, b, v: np.linalg.lstsq(b[0], v[:3])[0],
    "norms": lambda a, s, b, v: tuple(np.linalg.norm(a, o, axis=(1, 2)) for o in (2, -2, "nuc")),
    "cond": lambda a, s, b, v: np.linalg.cond(a),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_against_numpy(name: str, dtype: type) -> None:
    args = [x.astype(dtype) for x in (A, SPD, B, V)]
    check_all(FORWARD[name], *args, rtol=1e-9 if dtype == np.float64 else 1e-4)


GRADIENTS = {
    "solve": lambda m, b: np.sum(np.sin(np.linalg.solve(m + 3 * np.eye(3), b))),
    "inv": lambda m, b: np.sum(np.linalg.inv(m + 3 * np.eye(3)) ** 2),
    "det": lambda m, b: np.sum(np.linalg.det(m + 3 * np.eye(3))),
    "slogdet": lambda m, b: np.sum(np.linalg.slogdet(_spd(m))[1]),
    "cholesky": lambda m, b: np.sum(np.sin(np.linalg.cholesky(_spd(m)))),
    "eigvalsh": lambda m, b: np.sum(np.sin(np.linalg.eigvalsh(_spd(m)))),
    "eigh_vectors": lambda m, b: np.sum(np.linalg.eigh(_spd(m))[1] ** 4),
    "solve_triangular": lambda m, b: np.sum(sl.solve_triangular(m[0] + 3 * np.eye(3), b[0])),
    "cho_solve": lambda m, b: np.sum(np.sin(sl.cho_solve(sl.cho_factor(_spd(m)[0]), b[0]))),
    "lu_solve": lambda m, b: np.sum(np.sin(sl.lu_solve(sl.lu_factor(m[0] + 2 * np.eye(3)), b[0]))),
    "svd": lambda m, b: (
        np.sum(np.linalg.svd(b, full_matrices=False)[0][..., 0] ** 3) + np.sum(np.linalg.svd(m)[1])
    ),
    "qr": lambda m, b: np.sum(np.sin(np.linalg.qr(m)[0]) + np.linalg.qr(m)[1] ** 2),
    "pinv_lstsq": lambda m, b: np.sum(np.linalg.pinv(b)) + np.sum(np.linalg.lstsq(m[0], b[0])[0]),
    "norm_nuc": lambda m, b: np.linalg.norm(m[0], "nuc") + np.linalg.norm(b[1], 2),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_gradient(name: str) -> None:
    gc.check_grads(GRADIENTS[name], (M, B))


def test_second_derivatives() -> None:
    for f in (
        lambda m: np.sum(np.linalg.slogdet(_spd(m))[1]),
        lambda m: np.sum(np.linalg.inv(m + 3 * np.eye(3))),
        lambda m: np.sum(np.linalg.solve(m + 3 * np.eye(3), B)),
    ):
        gc.check_grads(lambda m, f=f: np.sum(gc.grad(f)(m) ** 2), (M,))


def _line(f: object) -> int:
    return inspect.getsourcelines(f)[1]  # type: ignore[arg-type]


def test_singular_and_indefinite_raise_at_the_users_line() -> None:
    def solve(a):  # noqa: ANN001, ANN202
        return np.linalg.solve(a, np.ones(3))

    def cholesky(a):  # noqa: ANN001, ANN202
        return np.linalg.cholesky(a)

    def triangular(a):  # noqa: ANN001, ANN202
        return sl.solve_triangular(a, np.ones(3))

    singular = np.ones((3, 3))
    raises_at_line(solve, singular, gc.LinAlgError, "singular", _line(solve) + 1)
    raises_at_line(cholesky, -np.eye(3), gc.LinAlgError, "positive definite", _line(cholesky) + 1)
    raises_at_line(triangular, np.triu(singular) - np.eye(3), gc.LinAlgError, "singular",
                   _line(triangular) + 1)  # fmt: skip
    # Also NumPy's own exception class, and slogdet of a singular matrix is (0, -inf).
    with pytest.raises(np.linalg.LinAlgError):
        gc.jit(lambda a: np.linalg.inv(a), backend="llvm")(np.zeros((2, 2)))
    for backend in ("numpy", "llvm"):
        sign, logdet = gc.jit(lambda a: np.linalg.slogdet(a), backend=backend)(singular)
        assert sign == 0 and logdet == -np.inf


def test_singular_triangular_solve_in_bodies_raises_everywhere_naming_it() -> None:
    """A singular 1x1 triangular solve on int16 data, inside a fused group,
    a branch and a loop body: every path raises LinAlgError naming
    triangular_solve (not the group, branch or loop around it) and its line."""
    from graphc.backends.llvm import compile as compile_llvm
    from graphc.backends.numpy import compile as compile_numpy
    from graphc.ir import DType, GraphBuilder, Loc, TensorType, interpret

    ty = TensorType((1, 1), DType.i16)
    body = GraphBuilder("body")
    x = body.input(ty, "x")
    with body.at(Loc("model.py", 7)):
        xf = body.cast(x, dtype=DType.f64)
        solved = body.triangular_solve(xf, xf)
    b = GraphBuilder("g")
    a = b.input(ty, "a")
    with b.at(Loc("model.py", 3)):
        out = b.emit("fusion", a, subgraphs=[body.build([solved])], kind="elementwise")
    g = b.build([out])
    zero = np.zeros((1, 1), np.int16)
    for run in (interpret, lambda g, x: compile_numpy(g)(x), lambda g, x: compile_llvm(g)(x)):
        with pytest.raises(gc.LinAlgError) as info:
            run(g, zero)
        assert str(info.value).startswith("triangular_solve: the matrix is singular"), info.value
        assert "model.py:7" in str(info.value), info.value

    def in_branch(x):  # noqa: ANN001, ANN202
        return gc.cond(x.sum() == 0, lambda y: sl.solve_triangular(y, y), lambda y: y + 1.0,
                       x.astype(np.float64))  # fmt: skip

    def in_loop(x):  # noqa: ANN001, ANN202
        return gc.fori_loop(0, 2, lambda i, y: sl.solve_triangular(y, y) + 0 * i,
                            x.astype(np.float64))  # fmt: skip

    raises_at_line(in_branch, zero, gc.LinAlgError, "triangular_solve", _line(in_branch) + 1)
    raises_at_line(in_loop, zero, gc.LinAlgError, "triangular_solve", _line(in_loop) + 1)
    # No right-hand side: nothing is solved, as in SciPy; solve still factors, as NumPy.
    for backend in ("numpy", "llvm"):
        empty = gc.jit(lambda a, r: sl.solve_triangular(a, r), backend=backend)
        assert empty(np.zeros((2, 2)), np.zeros((2, 0))).shape == (2, 0)
        with pytest.raises(gc.LinAlgError, match="singular"):
            gc.jit(np.linalg.solve, backend=backend)(np.zeros((2, 2)), np.zeros((2, 0)))


BRANCH_WITH_FUSED_CONSTANT = """
graph g(%x: f64[1,1], %p: bool[]) -> (f64[1,1]) {
  %0 = cond %p, %x : f64[1,1] {
    (%a: f64[1,1]) {
      %1 = fusion %a : f64[1,1] {
        (%b: f64[1,1]) {
          %c = constant {value=(3,)} : i16[1,1]
          %d = cast %c {dtype=f64}   : f64[1,1]
          %e = triangular_solve %d, %b : f64[1,1]
          return %e
        }
      }
      return %1
    }
    (%a: f64[1,1]) {
      return %a
    }
  }
  return %0
}
"""


def test_constant_in_a_fused_group_inside_a_branch_is_read_on_llvm() -> None:
    """A constant int16 matrix in a fused group inside a branch: the LLVM
    backend gave it scratch memory that nothing wrote, so the solve saw
    garbage (often a singular matrix, raising where the interpreter did not)."""
    from graphc.backends.llvm import compile as compile_llvm
    from graphc.ir import interpret, parse

    g = parse(BRANCH_WITH_FUSED_CONSTANT)
    x, taken = np.array([[6.0]]), np.array(True)
    assert interpret(g, x, taken)[0] == 2.0
    assert compile_llvm(g, cache=False)(x, taken)[0] == 2.0


def test_unsupported_decompositions_say_so() -> None:
    with pytest.raises(gc.UnsupportedError, match="np.linalg.eig is not supported"):
        gc.jit(lambda a: np.linalg.eig(a))(np.eye(2))


def test_undefined_gradients_raise() -> None:
    with pytest.raises(gc.OpTypeError, match="full_matrices=True"):
        gc.grad(lambda b: np.sum(np.linalg.svd(b)[0]))(B[0])
    with pytest.raises(gc.OpTypeError, match="tall or square"):
        gc.grad(lambda b: np.sum(np.linalg.qr(b.T)[1]))(B[0])
    with pytest.raises(gc.UnsupportedError, match="lu_factor returned"):
        gc.jit(lambda a, p: sl.lu_solve((a, p), V))(A[0], np.arange(3, dtype=np.int32))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"transposed": True},
        {"assume_a": "sym"},
        {"assume_a": "sym", "lower": True},
        {"assume_a": "pos"},
        {"assume_a": "lower triangular"},
    ],  # fmt: skip
)
def test_scipy_solve_options(options: dict) -> None:  # type: ignore[type-arg]
    # A non-symmetric matrix shows which triangle each assumption reads.
    a = SPD[0] + np.triu(A[0], 1) if options.get("assume_a") != "pos" else SPD[0]
    check_all(lambda x, y: sl.solve(x, y, **options), a, B[0])


def test_constant_matrices_join_the_trace() -> None:
    c = np.tril(A[0])
    check_all(
        lambda b: sl.cho_solve((SPD[0], False), b) + sl.solve_triangular(c, b, lower=True), B[0]
    )


def test_lstsq_results_follow_numpy() -> None:
    """Solution, residuals, rank (int32) and singular values as NumPy gives
    them, including the empty residuals of a matrix with m <= n and of a
    rank-deficient matrix that is not traced (its rank is known when tracing).
    A traced tall matrix always returns its residuals (static shapes)."""
    tall, wide = RNG.normal(size=(5, 3)), RNG.normal(size=(2, 4))
    deficient = np.outer(RNG.normal(size=5), RNG.normal(size=3))
    rhs, rhs2 = RNG.normal(size=5), RNG.normal(size=(5, 2))
    check_all(lambda a, b: np.linalg.lstsq(a, b), tall, rhs)
    check_all(lambda a, b: np.linalg.lstsq(a, b), tall, rhs2)
    check_all(lambda a, b: np.linalg.lstsq(a, b), wide, rhs2[:2])
    check_all(lambda a, b: np.linalg.lstsq(a, b), A[0], V)
    check_all(lambda b: np.linalg.lstsq(deficient, b), rhs2)
    for backend in ("numpy", "llvm"):
        x, res, rank, s = gc.jit(lambda a, b: np.linalg.lstsq(a, b), backend=backend)(
            deficient, rhs
        )
        assert rank == 1 and rank.dtype == np.int32
        np.testing.assert_allclose(x, np.linalg.lstsq(deficient, rhs)[0], rtol=1e-10)
        np.testing.assert_allclose(res, [np.sum((deficient @ x - rhs) ** 2)], rtol=1e-10)
