"""NumpyExecutable: the compiled function, its input check and error mapping."""

from __future__ import annotations

import itertools
import linecache
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from graphc.ir import (
    BackendError,
    Graph,
    GraphcError,
    GraphcIndexError,
    InputError,
    LinAlgError,
    Node,
    TensorType,
    coerce_input,
    print_graph,
)
from graphc.ir.errors import format_message

from .codegen import Generated

_KEYS = itertools.count()

# Sources of executables that were garbage collected. A finalizer runs at any
# allocation, also inside linecache.checkcache's loop over the cache's keys
# (doctest and traceback formatting call it), where removing an entry raises
# KeyError there; so a finalizer only notes the name (list.append is atomic)
# and the next registration removes it.
_RETIRED_SOURCES: list[str] = []


def _drop_retired_sources() -> None:
    while _RETIRED_SOURCES:
        linecache.cache.pop(_RETIRED_SOURCES.pop(), None)


@dataclass(frozen=True)
class MemoryReport:
    """Where an executable's arrays live. Buffers are allocated once and
    reused by every call; everything else is allocated by NumPy per call
    (outputs always are, so a caller's results are never overwritten)."""

    buffer_bytes: int  # preallocated for intermediates
    buffered_values: int  # intermediates written into those buffers (out=)
    allocated_values: int  # intermediates NumPy allocates on each call
    view_values: int  # results that share an operand's memory (reshape, transpose...)
    constant_bytes: int
    input_bytes: int
    output_bytes: int

    def __str__(self) -> str:
        rows = [(k, getattr(self, k)) for k in self.__dataclass_fields__]
        return "\n".join(f"{k:17s} {v:>14,d}" for k, v in rows)


def new_key() -> str:
    """A fresh file name for generated source: ``<graphc-numpy-N>``."""
    return f"<graphc-numpy-{next(_KEYS)}>"


class NumpyExecutable:
    """A graph compiled to a Python function over NumPy.

    Call it with the graph's inputs as arrays (in graph order); it returns a
    tuple of fresh arrays. ``.source`` is the generated Python (registered
    with :mod:`linecache`, so tracebacks show its lines), ``.graph`` the
    graph it computes, ``.memory`` a :class:`MemoryReport` and
    ``.buffer_bytes`` the memory it preallocated.
    An executable with preallocated buffers runs one call at a time.

    >>> from graphc.ir import GraphBuilder, f64
    >>> from graphc.backends.numpy import compile
    >>> b = GraphBuilder("f"); x = b.input(f64[3], "x")
    >>> exe = compile(b.build([b.mul(b.exp(x), 2.0)]))
    >>> exe(np.zeros(3))
    (array([2., 2., 2.]),)
    """

    def __init__(
        self,
        graph: Graph,
        flat: Graph,
        generated: Generated,
        origin: dict[Node, Node],
        memory: MemoryReport,
        key: str,
    ) -> None:
        self.graph = graph
        self.flat_graph = flat
        self.source = generated.source
        self.filename = key
        self.memory = memory
        buffer_bytes = self.buffer_bytes = memory.buffer_bytes
        self._line_nodes = generated.line_nodes
        self._origin = origin
        self._arity = len(graph.inputs)
        self._lock = threading.Lock() if buffer_bytes else None
        self._register_source()
        weakref.finalize(self, _RETIRED_SOURCES.append, key)
        namespace: dict[str, Any] = {}
        exec(compile_source(self.source, key), namespace)
        factory: Callable[[dict[str, Any]], Callable[..., Any]] = namespace[
            f"make_{generated.function}"
        ]
        self._fn = factory(generated.env)

    def _register_source(self) -> None:
        _drop_retired_sources()
        # mtime None: linecache.checkcache leaves the entry alone.
        lines = self.source.splitlines(True)
        linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)

    @property
    def input_types(self) -> tuple[TensorType, ...]:
        return self.graph.input_types

    @property
    def output_types(self) -> tuple[TensorType, ...]:
        return self.graph.output_types

    def __call__(self, *arrays: Any) -> tuple[np.ndarray, ...]:
        if len(arrays) != self._arity:
            raise InputError(
                f"graph {self.graph.name} takes {self._arity} inputs "
                f"({', '.join(f'%{v.name}: {v.type}' for v in self.graph.inputs)}), "
                f"got {len(arrays)}"
            )
        try:
            if self._lock is None:
                return self._fn(*arrays)  # type: ignore[no-any-return]
            with self._lock:
                return self._fn(*arrays)  # type: ignore[no-any-return]
        except LinAlgError as exc:
            # A singular or indefinite matrix: name the node and the user's line.
            raise self._failure(exc) from None
        except GraphcError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc

    def __repr__(self) -> str:
        return f"<NumpyExecutable {self.graph.name} ({self.filename})>"

    # -- errors ----------------------------------------------------------------
    def _failure(self, exc: BaseException) -> GraphcError:
        """A GraphcError naming the IR node and user line that ``exc`` came from."""
        line = _generated_line(exc.__traceback__, self.filename)
        flat = self._line_nodes.get(line) if line is not None else None
        if flat is None or line is None:
            return BackendError(f"numpy backend: {self.graph.name} failed: {exc}")
        node = self._origin.get(flat, flat)
        details = [f"node: {_printed_line(self.graph, node)}"]
        if flat is not node:
            details.append(f"in its {flat.op} step (the backend's decomposition of {node.op})")
        self._register_source()  # in case someone cleared linecache since
        code = self.source.splitlines()[line - 1].strip()
        details.append(f"generated {self.filename}:{line}: {code}")
        cls = GraphcIndexError if isinstance(exc, IndexError) else BackendError
        what = f"{node.op} failed: {type(exc).__name__}: {exc}"
        if isinstance(exc, LinAlgError):
            cls, what = LinAlgError, str(exc)
        message = format_message(what, details=details, loc=flat.loc)
        err = cls(message)
        err.op = node.op
        err.loc = flat.loc
        return err

    # -- input conversion --------------------------------------------------------
    def check_input(self, k: int, a: Any) -> np.ndarray:
        """Input ``k`` as an ndarray of exactly its type, or an InputError."""
        v = self.graph.inputs[k]
        return coerce_input(a, v.type, f"graph {self.graph.name}: input {k} (%{v.name})")


def compile_source(source: str, key: str) -> Any:
    return compile(source, key, "exec")


def _generated_line(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _printed_line(g: Graph, node: Node) -> str:
    lines = print_graph(g).splitlines()
    starts = [line for line in lines if line.startswith("  %")]
    try:
        index = g.nodes.index(node)
    except ValueError:
        return node.op
    return starts[index].strip() if index < len(starts) else node.op
