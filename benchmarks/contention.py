"""How much of the machine other processes used while a workload was being timed.

The timings share the cores with whatever else runs. /proc/stat counts the CPU time of
every process; subtracting this process's own CPU time leaves everyone else's, which the
report turns into a warning when it is large enough to inflate the medians.
"""

from __future__ import annotations

import os
import resource
import time


def _machine_busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy;
    # steal is time the hypervisor gave to other machines, which this run lost as well.
    ticks = [int(x) for x in fields[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Watch:
    """Measures, over the periods spent inside `with watch:`, the share of all cores' time
    that other processes (and the hypervisor's steal) took."""

    def __init__(self) -> None:
        self.capacity = 0.0
        self.others = 0.0
        self.supported = _machine_busy_seconds() is not None

    def __enter__(self) -> Watch:
        self._start = (time.perf_counter(), _machine_busy_seconds() or 0.0, _own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, machine, own = self._start
        self.capacity += (time.perf_counter() - wall) * (os.cpu_count() or 1)
        busy = (_machine_busy_seconds() or 0.0) - machine
        self.others += max(0.0, busy - (_own_seconds() - own))

    def share_of_others(self) -> float | None:
        if not self.supported or self.capacity <= 0:
            return None
        return self.others / self.capacity


def wait_for_quiet(max_wait_s: float, threshold: float = 0.25, window_s: float = 0.5) -> float:
    """Idle in windows of `window_s` until other processes use less than `threshold` of
    the machine over one window, or `max_wait_s` has passed; return the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        watch = Watch()
        with watch:
            time.sleep(window_s)
        share = watch.share_of_others()
        if share is None or share < threshold:
            break
    return time.perf_counter() - start
