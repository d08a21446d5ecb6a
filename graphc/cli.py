"""The graphc command: compile, inspect and draw model files and IR files.

FILE is an IR file (such as the ones jit(..., dump=DIR) writes; '-' reads
standard input) or a Python model file, FILE.py[:FUNCTION], that defines
example_inputs() (see graphc.modelfile).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphc.ir import Graph, GraphcError, InputError, parse, verify

EXAMPLES = """\
examples:
  graphc report examples/mlp_digits.py -o report.html   HTML compile report
  graphc render examples/mlp_digits.py:forward -o g.svg  draw the graph (.svg/.png/.pdf/.dot)
  graphc dump   model.py --traced                       print the traced IR
  graphc bench  model.py --backend numpy                time compiled calls
  graphc check  run/03-simplify.gir                     parse and verify an IR file
  graphc print  run/03-simplify.gir --locations
  graphc optimize run/00-input.gir --backend llvm --disable simplify

A model file says what to compile with example_inputs(), returning
{'function_name': (arg0, arg1, ...)}; the first entry is the default.
"""

# Exit status of a tool whose reader went away (128 + SIGPIPE), as `yes | head` gives.
BROKEN_PIPE_STATUS = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphc`` console script; returns the exit status.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "f.gir")
    >>> text = "graph f(%x: f32[2]) -> (f32[2]) { %0 = exp %x : f32[2] return %0 }"
    >>> _ = open(path, "w").write(text)
    >>> main(["check", path])
    ok: graph f, 1 input, 1 node, 1 output
    0
    """
    args = _parser().parse_args(argv)
    try:
        _run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) has closed the pipe: stop quietly. Point
        # stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass  # stdout is not a real file (captured in a test): nothing to flush
        return BROKEN_PIPE_STATUS
    except (GraphcError, OSError) as exc:
        print(f"graphc: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphc",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, compiles: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("file", metavar="FILE", help="IR file, '-', or FILE.py[:FUNCTION]")
        if compiles:
            _compile_options(sub)
        return sub

    command("check", "parse and verify a graph")
    show = command("print", "print a graph in canonical IR text")
    show.add_argument("--locations", action="store_true", help="append source locations")
    dot = command("dot", "write Graphviz DOT source for a graph")
    dot.add_argument("-o", "--output", help="output file (default: standard output)")
    opt = command("optimize", "run the optimization pipeline and print the result", True)
    opt.add_argument("--report", action="store_true", help="print per-pass timings too")

    report = command("report", "compile and write the compile report", True)
    report.add_argument(
        "-o", "--output", help="report.html (self-contained page) or .txt (default: text to stdout)"
    )
    render = command("render", "compile and draw the graph (needs Graphviz)", True)
    render.add_argument("-o", "--output", required=True, help="g.svg, g.png, g.pdf or g.dot")
    render.add_argument("--traced", action="store_true", help="draw the traced graph instead")
    dump = command("dump", "compile and print the IR (or write it)", True)
    dump.add_argument("--traced", action="store_true", help="the traced graph, not the optimized")
    dump.add_argument(
        "-o", "--output", help="a .gir file, or a directory for the IR after every pass"
    )
    bench = command("bench", "compile and time calls on the example inputs", True)
    bench.add_argument("--repeat", type=int, default=20, help="timed calls (default: 20)")
    return parser


def _compile_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--backend",
        choices=["numpy", "llvm", "interpret"],
        default=None,
        help="backend to compile for (default: the fastest available; numpy for IR files)",
    )
    sub.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="PASS",
        help="skip a pass by name (repeatable)",
    )
    sub.add_argument(
        "--budget", type=_bytes, default=None, metavar="BYTES", help="memory budget (e.g. 64MB)"
    )
    what = sub.add_mutually_exclusive_group()
    what.add_argument(
        "--grad",
        action="store_true",
        help="compile value_and_grad of the function (forward and backward)",
    )
    what.add_argument(
        "--train",
        action="store_true",
        help="compile a whole gc.train_step (Adam) of the function, whose first "
        "argument is the parameters (model files only)",
    )


def _bytes(text: str) -> int:
    units = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "b": 1}
    lower = text.strip().lower()
    for suffix, scale in units.items():
        if lower.endswith(suffix):
            return int(float(lower[: -len(suffix)]) * scale)
    return int(lower)


def _run(args: argparse.Namespace) -> None:
    from graphc.modelfile import is_model_spec

    if args.command in ("check", "print", "dot", "optimize"):
        g = _load_graph(args.file, grad=getattr(args, "grad", False))
        _inspect(args, g)
        return
    if not is_model_spec(args.file):
        if args.command == "bench":
            raise InputError("graphc bench needs a model file (FILE.py[:FUNCTION]) to call")
        # An IR file has no Python function to call: compile its graph directly.
        _compiled_ir_command(args, _load_graph(args.file))
        return
    target = _jit_model(args)
    jitted, entry = target.jitted, target.entry
    compiled = jitted.lower(*target.args)
    if args.command == "report":
        if args.output and Path(args.output).suffix == ".html":
            jitted.report.html(args.output)
        else:
            _write_or_print(args.output, str(compiled.report))
    elif args.command == "render":
        jitted.render(args.output, optimized=not args.traced)
    elif args.command == "dump":
        _dump(args, compiled.graph if args.traced else compiled.optimized_graph, jitted, entry)
    else:
        _bench(args, target, compiled)


def _inspect(args: argparse.Namespace, g: Graph) -> None:
    if args.command == "check":
        counts = (len(g.inputs), g.num_nodes(recursive=True), len(g.outputs))
        words = [_plural(n, w) for n, w in zip(counts, ("input", "node", "output"))]
        print(f"ok: graph {g.name}, {', '.join(words)}")
    elif args.command == "print":
        print(g.format(locations=args.locations))
    elif args.command == "dot":
        _write_or_print(args.output, g.to_dot())
    else:
        optimized, report = _optimize(g, args)
        print(optimized)
        if args.report:
            print(report, file=sys.stderr)


def _optimize(g: Graph, args: argparse.Namespace, dump_dir: str | None = None) -> tuple[Graph, Any]:
    from graphc.compiler import pipeline_for
    from graphc.passes.pipeline import optimize

    return optimize(
        g,
        disabled=tuple(args.disable),
        dump_dir=dump_dir,
        passes=pipeline_for(args.backend or "numpy", memory_budget=args.budget),
    )


def _compiled_ir_command(args: argparse.Namespace, g: Graph) -> None:
    from graphc.viz import render

    if args.grad or args.train:
        flag = "--grad" if args.grad else "--train"
        raise InputError(f"{flag} needs a model file; an IR file has no function to differentiate")
    if args.command == "dump":
        if _is_dir_target(args.output):
            _optimize(g, args, dump_dir=args.output)
            print(f"wrote the IR after every pass of {g.name} to {args.output}/")
            return
        shown = g if args.traced else _optimize(g, args)[0]
        _write_or_print(args.output, shown.format(locations=True))
    elif args.command == "render":
        render(g if args.traced else _optimize(g, args)[0], args.output)
    else:
        from graphc.compiler import compile_graph

        # The whole compile, so the page has the memory plan and the generated code too.
        backend = args.backend or "numpy"
        result = compile_graph(
            g, backend=backend, disable_passes=tuple(args.disable), memory_budget=args.budget
        )
        if args.output and Path(args.output).suffix == ".html":
            from graphc.viz.report import write_html

            write_html(
                args.output,
                traced=g,
                optimized=result.graph,
                report=result.report,
                memory=result.memory,
                plan=result.plan,
                backend=backend,
                executable=result.executable,
                seconds=result.seconds,
            )
        else:
            _write_or_print(args.output, str(result.report))


@dataclass
class _Target:
    """What a compiling command works on: the jitted function, its arguments,
    and one call as a benchmark makes it (a train step carries its state)."""

    jitted: Any
    args: tuple[Any, ...]
    entry: Any
    call: Callable[[], Any]


def _jit_model(args: argparse.Namespace) -> _Target:
    import graphc as gc
    from graphc.modelfile import load_entry

    entry = load_entry(args.file)
    fn = entry.function
    dump_dir = args.output if args.command == "dump" and _is_dir_target(args.output) else None
    options: dict[str, Any] = {
        "backend": args.backend,
        "disable_passes": tuple(args.disable),
        "memory_budget": args.budget,
        "dump": dump_dir,
    }
    if getattr(args, "train", False):
        if not entry.args:
            raise InputError(f"--train: {entry.name} takes no arguments; its first must be params")
        has_aux = _returns_aux(fn, entry.args)
        step = gc.train_step(fn, gc.optim.Adam(1e-3), has_aux=has_aux, **options)
        state = [step.init(entry.args[0])]
        batch = entry.args[1:]

        def train() -> Any:
            state[0] = step(state[0], *batch)[0]

        s = state[0]
        flat = (s.params, s.opt_state, s.model_state, s.key, *batch)
        return _Target(step.jitted, flat, entry, train)
    if args.grad:
        fn = gc.value_and_grad(fn, has_aux=_returns_aux(fn, entry.args))
    jitted = gc.jit(fn, **options)
    return _Target(jitted, entry.args, entry, lambda: jitted(*entry.args))


def _returns_aux(fn: Any, args: tuple[Any, ...]) -> bool:
    """Whether ``fn`` returns ``(loss, aux)`` (as train-step losses may), not a scalar."""
    from graphc.tracing import trace_flat

    traced = trace_flat(fn, args)
    tree = traced.out_tree
    pair = tree.kind == "tuple" and len(tree.children) == 2
    return pair and not traced.graph.outputs[0].type.shape


def _is_dir_target(output: str | None) -> bool:
    return output is not None and (Path(output).is_dir() or not Path(output).suffix)


def _dump(args: argparse.Namespace, g: Graph, jitted: Any, entry: Any) -> None:
    if _is_dir_target(args.output):
        print(f"wrote the IR after every pass of {entry.name} to {args.output}/")
        return
    _write_or_print(args.output, g.format(locations=True))


def _bench(args: argparse.Namespace, target: _Target, compiled: Any) -> None:
    import numpy as np

    if args.repeat < 1:
        raise InputError("--repeat must be at least 1")
    target.call()  # warm up caches and thread pools
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        target.call()
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    entry = target.entry
    print(
        f"{entry.path.name}:{entry.name} on {compiled.backend}: "
        f"median {np.median(ms):.3f} ms, min {ms.min():.3f} ms over {args.repeat} calls; "
        f"compiled in {compiled.compile_seconds:.2f} s"
    )


def _write_or_print(output: str | None, text: str) -> None:
    if output:
        Path(output).write_text(text + "\n")
    else:
        print(text)


def _load_graph(path: str, grad: bool = False) -> Graph:
    from graphc.modelfile import is_model_spec, load_entry

    if is_model_spec(path):
        import graphc as gc

        entry = load_entry(path)
        fn = entry.function
        if grad:
            fn = gc.value_and_grad(fn, has_aux=_returns_aux(fn, entry.args))
        return gc.trace(fn, *entry.args)
    if grad:
        raise InputError("--grad needs a model file; an IR file has no function to differentiate")
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return verify(parse(text))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


if __name__ == "__main__":
    raise SystemExit(main())
