"""Timing and cross-checking, with all implementations of a workload in one process.

Timing protocol, per workload:
1. Build every implementation; time the build (`setup_s`) and its first step
   (`first_call_s`: tracing and compilation for graphc and JAX, lazy init for PyTorch).
2. Warm up each one for `warmup_s`, and pick one number of steps per sample for all of
   them, so that a sample of a typical implementation lasts `min_sample_s` (short steps
   are timed in a loop, so timer resolution and call noise average out).
3. Take `repeat` rounds; each round times one sample of every implementation, in an
   order rotated by one each round, so slow drift of the machine (clock, cache, other
   load) is spread over all implementations instead of landing on one. Every sample
   starts from the initial parameters (see `Runner.reset`), so all implementations and
   all samples time the same training steps.
Reported: the median over samples of time per step, and the min and max.
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import contention
from .core import Problem, Runner, Unavailable, Workload, to_float
from .graphc_entries import is_graphc_error


@dataclass
class TimingConfig:
    repeat: int | None = None  # None: the workload's default
    warmup_s: float = 0.3
    min_sample_s: float = 0.05
    max_sample_s: float = 1.0
    pause_s: float = 0.005
    # A busy machine can make steps far slower than the warm-up predicted; past this many
    # seconds of sampling a workload stops after the round in progress (at least 3 rounds).
    budget_s: float = 240.0
    # Before each round, wait up to this long for other processes to leave the cores
    # (0: don't wait). Helps on a shared machine whose load comes in bursts.
    wait_quiet_s: float = 0.0


@dataclass
class EntryResult:
    name: str
    status: str = "ok"  # ok | unavailable | failed
    reason: str = ""
    note: str = ""
    setup_s: float | None = None
    first_call_s: float | None = None
    steps_per_sample: int | None = None
    samples_s: list[float] = field(default_factory=list)
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    memory: dict[str, Any] | None = None
    check: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build(factory: Any, problem: Problem, result: EntryResult) -> tuple[Runner, Any] | None:
    """Build an implementation and run its first step, returning the runner and that step's
    loss; on failure record why and return None.

    Missing libraries and APIs, and graphc's own "cannot compile this" errors, count as
    unavailable; anything else is a failure, reported with its exception.
    """
    try:
        t0 = time.perf_counter()
        runner = factory(problem)
        t1 = time.perf_counter()
        first = runner.step()
        t2 = time.perf_counter()
    except Unavailable as e:
        result.status, result.reason = "unavailable", str(e)
        return None
    except (ImportError, NotImplementedError) as e:
        result.status, result.reason = "unavailable", f"{type(e).__name__}: {e}"
        return None
    except Exception as e:
        kind = "unavailable" if is_graphc_error(e) else "failed"
        result.status, result.reason = kind, _describe(e)
        return None
    result.setup_s, result.first_call_s, result.note = t1 - t0, t2 - t1, runner.note
    return runner, first


def _describe(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first_line}{where}"


def time_workload(
    workload: Workload, problem: Problem, names: list[str], config: TimingConfig
) -> tuple[dict[str, EntryResult], float | None]:
    """Build, warm up and time every named implementation of `workload`, interleaved.

    Also returns the share of the machine other processes used while samples were taken.
    """
    results = {name: EntryResult(name) for name in names}
    runners: dict[str, Runner] = {}
    for name in names:
        built = build(workload.impls[name], problem, results[name])
        if built is not None:
            runners[name] = built[0]
    fastest: dict[str, float] = {}
    for name, runner in list(runners.items()):
        try:
            fastest[name] = _warm_up(runner, config)
        except Exception as e:
            results[name].status, results[name].reason = "failed", _describe(e)
            del runners[name]
    steps = _steps_per_sample(list(fastest.values()), config)
    order = list(runners)
    repeat = config.repeat or workload.default_repeat
    watch = contention.Watch()
    start = time.perf_counter()
    for r in range(repeat):
        if r >= 3 and time.perf_counter() - start > config.budget_s:
            break
        if config.wait_quiet_s:
            contention.wait_for_quiet(config.wait_quiet_s)
        shift = r % len(order) if order else 0
        for name in order[shift:] + order[:shift]:
            with watch:
                results[name].samples_s.append(_sample(runners[name], steps, config))
    for name in order:
        samples = results[name].samples_s
        results[name].steps_per_sample = steps
        results[name].median_s = statistics.median(samples)
        results[name].min_s, results[name].max_s = min(samples), max(samples)
    return results, watch.share_of_others()


def _warm_up(runner: Runner, config: TimingConfig) -> float:
    """Run steps for `warmup_s` (at least two); return the fastest step's time."""
    fastest = float("inf")
    start = time.perf_counter()
    steps = 0
    while steps < 2 or time.perf_counter() - start < config.warmup_s:
        t0 = time.perf_counter()
        runner.step()
        fastest = min(fastest, time.perf_counter() - t0)
        steps += 1
    return fastest


def _steps_per_sample(fastest: list[float], config: TimingConfig) -> int:
    # One count for all implementations, so every sample covers the same training steps:
    # enough for a typical implementation to fill `min_sample_s`, few enough that the
    # slowest stays near `max_sample_s`.
    if not fastest:
        return 1
    steps = round(config.min_sample_s / max(statistics.median(fastest), 1e-7))
    steps = min(steps, round(config.max_sample_s / max(fastest)))
    return max(1, min(10_000, steps))


def _sample(runner: Runner, steps: int, config: TimingConfig) -> float:
    """Seconds per step over `steps` back-to-back steps, Python's GC paused as timeit does.

    Each sample starts from the initial parameters and a fresh optimizer, and one untimed
    step creates the optimizer state, so every sample times training steps 2..steps+1.
    """
    runner.reset()
    runner.step()
    gc.collect()
    # A short idle gap lets other implementations' spinning worker threads go to sleep.
    time.sleep(config.pause_s)
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            runner.step()
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    return elapsed / steps


# bfloat16 keeps 8 significant bits (relative rounding 2**-8 per operation), so a 16-bit
# entry cannot agree with float32 NumPy to a float32 tolerance. The losses stay close
# (within 2e-4 over 3 steps on W1, W2, W5); single arrays drift further: a bias that
# starts at zero moves only by its gradients' rounding (W1's differs by 6%). A wrong
# gradient moves the loss by far more than the loss tolerance.
MIXED_PRECISION_RTOL = {"loss": 1e-2, "state": 0.1}


def entry_rtol(name: str, rtol: float) -> dict[str, float]:
    """The check's tolerances (loss, state) for entry ``name``: ``rtol`` for both, or
    the 16-bit ones for a mixed-precision entry (``...-bf16``)."""
    if name.endswith("-bf16"):
        return {k: max(rtol, v) for k, v in MIXED_PRECISION_RTOL.items()}
    return {"loss": rtol, "state": rtol}


def check_workload(
    workload: Workload,
    problem: Problem,
    names: list[str],
    steps: int,
    rtol: float,
    reference: str = "numpy",
) -> dict[str, EntryResult]:
    """Run `steps` steps of each implementation from the same start and compare with NumPy.

    Compared: the loss after every step (relative difference) and the updated state after
    the last (relative Frobenius norm of the difference, per array, worst array reported).
    """
    results = {name: EntryResult(name) for name in dict.fromkeys([reference, *names])}
    traces: dict[str, tuple[list[float], dict[str, np.ndarray]]] = {}
    for name, result in results.items():
        built = build(workload.impls[name], problem, result)
        if built is None:
            continue
        runner, first = built
        try:
            losses = [to_float(first)] + [to_float(runner.step()) for _ in range(steps - 1)]
            state = {k: np.array(v, dtype=np.float64) for k, v in runner.state().items()}
        except Exception as e:
            result.status, result.reason = "failed", _describe(e)
            continue
        traces[name] = (losses, state)
    if reference not in traces:
        for name in names:
            results[name].check = {"ok": False, "why": f"reference {reference!r} did not run"}
        return results
    ref_losses, ref_state = traces[reference]
    for name in names:
        if name not in traces:
            continue
        losses, state = traces[name]
        loss_err = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(losses, ref_losses))
        state_err, worst = 0.0, ""
        for key, ref in ref_state.items():
            if key not in state or state[key].shape != ref.shape:
                state_err, worst = float("inf"), f"{key} missing or misshapen"
                break
            err = float(np.linalg.norm(state[key] - ref) / max(np.linalg.norm(ref), 1e-30))
            if err > state_err:
                state_err, worst = err, key
        tolerance = entry_rtol(name, rtol)
        ok = loss_err <= tolerance["loss"] and state_err <= tolerance["state"]
        results[name].check = {
            "ok": ok,
            "steps": steps,
            "losses": losses,
            "loss_rel_err": loss_err,
            "state_rel_err": state_err,
            "state_worst": worst,
            "rtol": tolerance,
        }
    return results
