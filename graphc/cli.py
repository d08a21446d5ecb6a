"""The ``graphc`` command: inspect IR files such as the ones ``dump=`` writes.

graphc check  run/03-simplify.gir          # parse and verify
graphc print  run/03-simplify.gir --locations
graphc dot    run/03-simplify.gir -o g.dot # Graphviz source
graphc optimize run/00-input.gir --backend llvm --disable simplify
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from graphc.ir import Graph, GraphcError, parse, verify


def _load(path: str) -> Graph:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return verify(parse(text))


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
    parser = argparse.ArgumentParser(prog="graphc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="parse and verify an IR file")
    check.add_argument("file", help="an IR file ('-' reads standard input)")
    show = commands.add_parser("print", help="print an IR file in canonical form")
    show.add_argument("file")
    show.add_argument("--locations", action="store_true", help="append source locations")
    dot = commands.add_parser("dot", help="write Graphviz DOT source for an IR file")
    dot.add_argument("file")
    dot.add_argument("-o", "--output", help="output file (default: standard output)")
    opt = commands.add_parser("optimize", help="run the optimization pipeline and print the result")
    opt.add_argument("file")
    opt.add_argument(
        "--backend",
        choices=["numpy", "llvm"],
        default="numpy",
        help="whose lowering passes to run as well (default: numpy)",
    )
    opt.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="PASS",
        help="skip a pass by name (repeatable)",
    )
    opt.add_argument("--report", action="store_true", help="print per-pass timings too")
    args = parser.parse_args(argv)
    try:
        g = _load(args.file)
        if args.command == "check":
            counts = (len(g.inputs), g.num_nodes(recursive=True), len(g.outputs))
            words = [_plural(n, w) for n, w in zip(counts, ("input", "node", "output"))]
            print(f"ok: graph {g.name}, {', '.join(words)}")
        elif args.command == "print":
            print(g.format(locations=args.locations))
        elif args.command == "dot":
            if args.output:
                Path(args.output).write_text(g.to_dot() + "\n")
            else:
                print(g.to_dot())
        else:
            from graphc.compiler import pipeline_for
            from graphc.passes.pipeline import optimize

            optimized, report = optimize(
                g, disabled=tuple(args.disable), passes=pipeline_for(args.backend)
            )
            print(optimized)
            if args.report:
                print(report, file=sys.stderr)
    except (GraphcError, OSError) as exc:
        print(f"graphc: {exc}", file=sys.stderr)
        return 1
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


if __name__ == "__main__":
    raise SystemExit(main())
