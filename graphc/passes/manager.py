"""The pass manager: runs a list of named passes, instrumented.

Between passes it always times and counts nodes, optionally verifies
(``verify_each=True`` or ``GRAPHC_VERIFY=1``) and, when a dump directory is
given (``dump_dir=`` or ``GRAPHC_DUMP=DIR``), writes the IR after every step
to ``DIR/NN-<pass>.gir`` (``00-input.gir`` is the graph it started from).
The files are the ordinary text form with source locations, so
``graphc.ir.parse`` reads them back.

Passes never print. A pass that wants to say what it did calls
:func:`count` (``count("mul_one")``); outside a pass manager that is a no-op,
inside one it lands in the pass's row of the :class:`CompileReport`.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphc.ir import Graph, GraphcError, VerifyError, verify

from .rewrite import node_count


class PipelineError(GraphcError, ValueError):
    """A pipeline was configured wrongly (for example, an unknown pass name)."""


@dataclass(frozen=True)
class Pass:
    """A named step of a pipeline: a plain function ``Graph -> Graph``."""

    name: str
    run: Callable[[Graph], Graph]


@dataclass
class PassRecord:
    """What one pass did: wall time, node counts (subgraphs included) and counters."""

    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    counts: dict[str, int] = field(default_factory=dict)
    disabled: bool = False


@dataclass
class CompileReport:
    """Per-pass time and node counts of one :func:`run_passes` call.

    ``str(report)`` is a small table; ``report.counts`` merges the counters
    of every pass (which simplification rules fired, how many nodes CSE
    merged...). ``from_cache`` is true when the result came from the disk
    cache instead of running the passes; the times are then those of the
    compile that stored it.
    """

    graph: str
    passes: list[PassRecord] = field(default_factory=list)
    from_cache: bool = False

    @property
    def total_seconds(self) -> float:
        return sum(p.seconds for p in self.passes)

    @property
    def counts(self) -> dict[str, int]:
        merged: Counter[str] = Counter()
        for p in self.passes:
            merged.update(p.counts)
        return dict(merged)

    def record(self, name: str) -> PassRecord | None:
        """The first record of the pass called ``name``, if it ran."""
        return next((p for p in self.passes if p.name == name and not p.disabled), None)

    def __str__(self) -> str:
        width = max([len(p.name) for p in self.passes] + [4])
        lines = [
            f"compile report for {self.graph}",
            f"  {'pass'.ljust(width)}  {'ms':>8}  {'nodes':>13}  notes",
        ]
        for p in self.passes:
            if p.disabled:
                lines.append(f"  {p.name.ljust(width)}  {'-':>8}  {'':>13}  disabled")
                continue
            nodes = f"{p.nodes_before} -> {p.nodes_after}"
            notes = ", ".join(f"{k} x{v}" for k, v in sorted(p.counts.items()))
            lines.append(
                f"  {p.name.ljust(width)}  {p.seconds * 1e3:8.2f}  {nodes:>13}  {notes}".rstrip()
            )
        lines.append(f"  {'total'.ljust(width)}  {self.total_seconds * 1e3:8.2f}")
        if self.from_cache:
            lines.append(
                "  (loaded from the disk cache; the times are from the compile that stored it)"
            )
        return "\n".join(lines)


_COUNTERS: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar(
    "graphc_pass_counters", default=None
)


def count(what: str, n: int = 1) -> None:
    """Add ``n`` to the current pass's counter ``what`` (no-op outside a pass manager)."""
    counters = _COUNTERS.get()
    if counters is not None:
        counters[what] += n


def run_passes(
    g: Graph,
    passes: Sequence[Pass],
    *,
    disabled: Iterable[str] = (),
    dump_dir: str | os.PathLike[str] | None = None,
    verify_each: bool = False,
) -> tuple[Graph, CompileReport]:
    """Run ``passes`` over ``g`` in order; returns the result and a report.

    Args:
        disabled: names of passes to skip (to bisect a miscompile); a name
            that is not in ``passes`` raises :class:`PipelineError`.
        dump_dir: write ``NN-<pass>.gir`` after each step (default: the
            ``GRAPHC_DUMP`` environment variable, if set). Later calls
            overwrite files of the same name.
        verify_each: run the verifier after every pass (also with
            ``GRAPHC_VERIFY=1``); a failure names the pass that broke the IR.

    >>> from graphc.ir import GraphBuilder, f32
    >>> b = GraphBuilder("f"); x = b.input(f32[2], "x")
    >>> g = b.build([b.neg(b.neg(x))])
    >>> out, report = run_passes(g, [Pass("identity", lambda g: g)])
    >>> report.passes[0].nodes_after
    2
    """
    names = {p.name for p in passes}
    skip = set(disabled)
    unknown = skip - names
    if unknown:
        raise PipelineError(
            f"unknown pass name(s) {', '.join(sorted(unknown))}; "
            f"the pipeline has: {', '.join(p.name for p in passes)}"
        )
    if dump_dir is None:
        dump_dir = os.environ.get("GRAPHC_DUMP") or None
    verify_each = verify_each or os.environ.get("GRAPHC_VERIFY", "") not in ("", "0")
    dump = Path(dump_dir) if dump_dir is not None else None
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        _write(dump / "00-input.gir", g, "input")
    report = CompileReport(g.name)
    for index, p in enumerate(passes, start=1):
        if p.name in skip:
            report.passes.append(PassRecord(p.name, 0.0, 0, 0, disabled=True))
            continue
        before = node_count(g)
        counters: Counter[str] = Counter()
        token = _COUNTERS.set(counters)
        start = time.perf_counter()
        try:
            g = p.run(g)
        except Exception as exc:
            note = f"while running pass '{p.name}' on graph {g.name}"
            if hasattr(exc, "add_note"):
                exc.add_note(note)
            else:  # Python 3.10: same attribute, not printed by tracebacks there
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
            raise
        finally:
            seconds = time.perf_counter() - start
            _COUNTERS.reset(token)
        record = PassRecord(p.name, seconds, before, node_count(g), dict(counters))
        report.passes.append(record)
        if verify_each:
            try:
                verify(g)
            except VerifyError as exc:
                raise VerifyError(f"after pass '{p.name}': {exc}") from None
        if dump is not None:
            _write(dump / f"{index:02d}-{p.name}.gir", g, p.name, record)
    return g, report


def _write(path: Path, g: Graph, step: str, record: PassRecord | None = None) -> None:
    header = f"# graphc IR after {step}"
    if record is not None:
        header += f" ({record.seconds * 1e3:.2f} ms, nodes {record.nodes_before} -> "
        header += f"{record.nodes_after})"
    path.write_text(header + "\n" + g.format(locations=True) + "\n")
