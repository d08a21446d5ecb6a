"""`python -m benchmarks`: time every workload on every available implementation.

Examples:
    python -m benchmarks                        # everything, results also in bench-results/
    python -m benchmarks --workloads W1,W3 --repeat 10
    python -m benchmarks --quick --impls numpy  # smoke run
    python -m benchmarks --check                # do the implementations agree?
    python -m benchmarks --compare OLD.json NEW.json
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from . import threads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="graphc against hand-written NumPy, PyTorch and JAX, in one process.",
        epilog=__doc__.split("Examples:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workloads", default="", help="comma-separated, e.g. W1,W3 (default: all)")
    p.add_argument(
        "--impls",
        default="",
        help="comma-separated implementations or prefixes, e.g. numpy,graphc (default: all)",
    )
    p.add_argument("--repeat", type=int, default=None, help="samples per implementation")
    p.add_argument("--quick", action="store_true", help="reduced sizes and repeats (smoke run)")
    p.add_argument("--threads", type=int, default=None, help="thread budget (default: all cores)")
    p.add_argument("--json", default=None, help="results file (default bench-results/<time>.json)")
    p.add_argument("--no-json", action="store_true", help="do not write a results file")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--min-sample-time", type=float, default=None, help="seconds per sample")
    p.add_argument(
        "--budget", type=float, default=None, help="seconds of sampling per workload (240)"
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each round, wait up to S seconds for other processes to go idle",
    )
    p.add_argument("--check", action="store_true", help="cross-check losses instead of timing")
    p.add_argument("--check-steps", type=int, default=3)
    p.add_argument("--check-rtol", type=float, default=1e-4)
    p.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="compare two JSON files")
    p.add_argument("--list", action="store_true", help="list workloads and implementations")
    return p.parse_args(argv)


def _select(requested: str, available: list[str], what: str, strict: bool = True) -> list[str]:
    """The names in ``available`` that ``requested`` (comma-separated names or
    prefixes) asks for; an item matching none is an error if ``strict``, else
    skipped (an implementation only some of the chosen workloads have)."""
    from .graphc_entries import is_opt_in

    if not requested:
        return [a for a in available if not is_opt_in(a)]
    chosen: list[str] = []
    for item in requested.split(","):
        item = item.strip()
        matches = [
            a
            for a in available
            if a == item or (a.startswith(item + "-") and (is_opt_in(item) or not is_opt_in(a)))
        ]
        if not matches and strict:
            raise SystemExit(f"unknown {what} {item!r}; available: {', '.join(available)}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        from .report import compare

        return compare(*args.compare)
    num_threads = args.threads or threads.available_cores()
    threads.configure(num_threads)
    _preload(args.impls)
    threads.apply_to_loaded_libraries(num_threads)

    from .workloads import WORKLOADS

    if args.list:
        for wl in WORKLOADS.values():
            print(f"{wl.name}  {wl.title}\n    {', '.join(wl.impls)}")
        return 0
    names = _select(args.workloads.upper(), list(WORKLOADS), "workload")
    # Every requested implementation must exist in at least one chosen workload.
    _select(args.impls, list(dict.fromkeys(i for n in names for i in WORKLOADS[n].impls)),
            "implementation")  # fmt: skip
    if args.check:
        return _run_check(args, [WORKLOADS[n] for n in names])
    return _run_timing(args, [WORKLOADS[n] for n in names], num_threads)


def _preload(requested: str) -> None:
    # Import up front so that import time never lands in an implementation's setup time.
    wanted = [w.strip() for w in requested.split(",") if w.strip()]
    for family, modules in (("numpy", ["numpy"]), ("torch", ["torch"]), ("jax", ["jax.numpy"])):
        if family == "numpy" or not wanted or any(w.startswith(family) for w in wanted):
            for module in modules:
                try:
                    __import__(module)
                except ImportError:
                    pass
    try:
        import graphc  # noqa: F401
    except ImportError:
        pass


def _run_timing(args: argparse.Namespace, workloads: list[Any], num_threads: int) -> int:
    from . import memory, report
    from .core import Unavailable
    from .harness import TimingConfig, time_workload

    config = TimingConfig(repeat=args.repeat)
    if args.quick:
        config = TimingConfig(repeat=args.repeat or 3, warmup_s=0.02, min_sample_s=0.005)
    if args.min_sample_time is not None:
        config.min_sample_s = args.min_sample_time
    if args.budget is not None:
        config.budget_s = args.budget
    config.wait_quiet_s = args.wait_quiet
    memory_off = "disabled (--no-memory)" if args.no_memory else memory.supported()

    env = report.environment(threads.report(num_threads))
    report.print_header(env, threads.summary_line(env["threads"]), args.quick)
    payload: dict[str, Any] = {
        "schema": 1,
        "env": env,
        "config": {"quick": args.quick, "repeat": args.repeat, "threads": num_threads},
        "workloads": {},
    }
    all_results: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in workloads:
        impls = _select(args.impls, list(wl.impls), "implementation", strict=False)
        if not impls:
            continue
        try:
            problem = wl.make_problem(args.quick)
        except Unavailable as e:
            print(f"\n{wl.name}  {wl.title}\n  unavailable: {e}")
            payload["workloads"][wl.name] = {"title": wl.title, "unavailable": str(e)}
            continue
        param_bytes = problem.param_bytes()
        results, others = time_workload(wl, problem, impls, config)
        del problem
        for name, r in results.items():
            if r.status == "ok":
                r.memory = (
                    {"error": memory_off}
                    if memory_off
                    else memory.probe(wl.name, name, num_threads, args.quick)
                )
        as_json = {name: r.to_json() for name, r in results.items()}
        all_results[wl.name] = as_json
        params = f"  [parameters {report.fmt_mib(param_bytes)} MiB]" if param_bytes else ""
        report.print_workload(f"{wl.name}  {wl.title}{params}", as_json)
        report.print_contention(others)
        payload["workloads"][wl.name] = {
            "title": wl.title,
            "param_bytes": param_bytes,
            "cpu_share_of_other_processes": others,
            "entries": as_json,
        }
        sys.stdout.flush()
    if not args.no_memory:
        report.print_memory_notes(all_results)
    # Libraries loaded during the run (graphc's BLAS, for one) show up only now.
    env["threads"] = threads.report(num_threads)
    print("\n" + threads.summary_line(env["threads"]))
    if not args.no_json:
        path = args.json or time.strftime("bench-results/%Y%m%d-%H%M%S.json")
        report.write_json(path, payload)
        print(f"results written to {path}")
    return 0


def _run_check(args: argparse.Namespace, workloads: list[Any]) -> int:
    from . import report
    from .core import Unavailable
    from .harness import MIXED_PRECISION_RTOL, check_workload

    print(
        f"cross-check: {args.check_steps} steps from the same start, loss and updated state "
        f"against the hand-written NumPy implementation, rtol {args.check_rtol:g} "
        "(bfloat16 entries: loss {loss:g}, state {state:g})".format(
            **{k: max(args.check_rtol, v) for k, v in MIXED_PRECISION_RTOL.items()}
        )
    )
    failed = 0
    for wl in workloads:
        chosen = _select(args.impls, list(wl.impls), "implementation", strict=False)
        impls = [n for n in chosen if n != "numpy"]
        try:
            problem = wl.make_problem(args.quick)
        except Unavailable as e:
            print(f"\n{wl.name}  unavailable: {e}")
            continue
        results = check_workload(wl, problem, impls, args.check_steps, args.check_rtol)
        as_json = {name: r.to_json() for name, r in results.items()}
        report.print_check(f"{wl.name}  {wl.title}", as_json)
        failed += sum(1 for r in results.values() if r.check is not None and not r.check["ok"])
        failed += sum(1 for r in results.values() if r.status == "failed")
    verdict = f"{failed} disagree or failed" if failed else "all implementations that ran agree"
    print("\n" + verdict)
    return 1 if failed else 0
