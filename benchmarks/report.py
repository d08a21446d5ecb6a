"""Printing results as a table, writing them as JSON, and comparing two JSON files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

PEERS = ("numpy", "torch", "jax")
MIB = 1024 * 1024


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def fmt_mib(nbytes: float | None) -> str:
    return "-" if nbytes is None else f"{nbytes / MIB:.1f}"


def environment(threads_report: dict[str, Any]) -> dict[str, Any]:
    """Where and with what the numbers were taken."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "torch", "jax", "jaxlib", "graphc", "llvmlite", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": _git_revision(),
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "versions": versions,
        "threads": threads_report,
    }


def _git_revision() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_header(env: dict[str, Any], summary: str, quick: bool) -> None:
    v = env["versions"]
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    print(f"graphc benchmarks  {env['created']}  commit {env['git']}")
    print(f"{env['processor']}; {libs}")
    print(summary)
    if quick:
        print("QUICK RUN: reduced sizes and repeats; a smoke test, not comparable numbers.")
    print("time = median time per step over samples (min-max); vs X = median / X's median")
    print("(< 1 means faster than X). peak = state before the first step + the step's own")
    print("memory (peak RSS minus RSS just before the first step), resident MiB measured in")
    print("a fresh process (see benchmarks/README.md).")


def print_workload(title: str, results: dict[str, dict[str, Any]]) -> None:
    print()
    print(title)
    peers = [p for p in PEERS if results.get(p, {}).get("median_s")]
    head = f"  {'impl':<17} {'time':>10} {'min-max':>21} {'first call':>11} {'peak MiB':>20}"
    head += "".join(f" {'vs ' + p:>9}" for p in peers)
    print(head)
    for name, r in results.items():
        if r["status"] != "ok":
            print(f"  {name:<17} {r['status']}: {r['reason']}")
            continue
        spread = f"{fmt_time(r['min_s'])}-{fmt_time(r['max_s'])}"
        line = f"  {name:<17} {fmt_time(r['median_s']):>10} {spread:>21}"
        line += f" {fmt_time(r['first_call_s']):>11} {_fmt_memory(r.get('memory')):>20}"
        for p in peers:
            line += f" {r['median_s'] / results[p]['median_s']:>9.2f}"
        if r.get("note"):
            line += f"  [{r['note']}]"
        if len(r["samples_s"]) < 5:
            line += f"  ({len(r['samples_s'])} samples)"
        print(line)
    ratios = _step_memory_ratios(results, "jax")
    if ratios:
        print("  step memory / jax's: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


def _step_memory_ratios(results: dict[str, dict[str, Any]], peer: str) -> dict[str, float]:
    """Each entry's step memory over ``peer``'s (the issues' memory targets)."""
    ref = (results.get(peer, {}).get("memory") or {}).get("step")
    if not ref:
        return {}
    out = {}
    for name, r in results.items():
        step = (r.get("memory") or {}).get("step")
        if name != peer and step is not None:
            out[name] = step / ref
    return out


def print_contention(share: float | None) -> None:
    """Say so when other processes used the cores while this workload was timed."""
    if share is not None and share > 0.1:
        print(
            f"  ! other processes used {share:.0%} of the machine's CPU time during these"
            " timings: medians are inflated (worst for multi-threaded BLAS/OpenMP, whose"
            " threads spin-wait); min is the better estimate, --threads 1 the steadier run."
        )


def _fmt_memory(mem: dict[str, Any] | None) -> str:
    if not mem:
        return "-"
    if "error" in mem:
        return "n/a"
    return f"{fmt_mib(mem['peak'])} ({fmt_mib(mem['state'])}+{fmt_mib(mem['step'])})"


def print_memory_notes(all_results: dict[str, dict[str, dict[str, Any]]]) -> None:
    notes = [
        f"  {wl}/{name}: {r['memory']['error']}"
        for wl, results in all_results.items()
        for name, r in results.items()
        if r.get("memory") and "error" in r["memory"]
    ]
    if notes:
        print("\nmemory not measured:")
        print("\n".join(notes))


def print_check(title: str, results: dict[str, dict[str, Any]]) -> None:
    print()
    print(title)
    for name, r in results.items():
        if r["status"] != "ok":
            print(f"  {name:<17} {r['status']}: {r['reason']}")
        elif r.get("check") is None:
            print(f"  {name:<17} reference")
        else:
            c = r["check"]
            if "loss_rel_err" not in c:
                print(f"  {name:<17} not compared: {c.get('why')}")
                continue
            verdict = "ok  " if c["ok"] else "FAIL"
            print(
                f"  {name:<17} {verdict} loss rel err {c['loss_rel_err']:.1e}, "
                f"state rel err {c['state_rel_err']:.1e} ({c['state_worst'] or 'all equal'}), "
                f"losses {', '.join(f'{x:.6g}' for x in c['losses'])}"
            )


def write_json(path: str, payload: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=False)
    os.replace(tmp, path)


def compare(old_path: str, new_path: str) -> int:
    """Print per workload and implementation: old median, new median, new/old."""
    with open(old_path) as f:
        old = json.load(f)
    with open(new_path) as f:
        new = json.load(f)
    print(f"old: {old_path}  ({old['env']['created']}, commit {old['env']['git']})")
    print(f"new: {new_path}  ({new['env']['created']}, commit {new['env']['git']})")
    print("new/old < 1 means the new run is faster (or uses less memory).")
    for wl in dict.fromkeys([*old["workloads"], *new["workloads"]]):
        o = old["workloads"].get(wl, {}).get("entries", {})
        n = new["workloads"].get(wl, {}).get("entries", {})
        print(f"\n{wl}")
        print(
            f"  {'impl':<17} {'old':>10} {'new':>10} {'new/old':>8} {'old MiB':>9} {'new MiB':>9}"
        )
        for name in dict.fromkeys([*o, *n]):
            om, nm = o.get(name, {}).get("median_s"), n.get(name, {}).get("median_s")
            ratio = f"{nm / om:.2f}" if om and nm else "-"
            opk = (o.get(name, {}).get("memory") or {}).get("peak")
            npk = (n.get(name, {}).get("memory") or {}).get("peak")
            print(
                f"  {name:<17} {fmt_time(om):>10} {fmt_time(nm):>10} {ratio:>8}"
                f" {fmt_mib(opk):>9} {fmt_mib(npk):>9}"
            )
    return 0
