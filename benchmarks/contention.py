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
    """Started at construction; `share_of_others()` is the fraction of all cores' time
    that other processes (and the hypervisor's steal) took since then."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.machine = _machine_busy_seconds()
        self.own = _own_seconds()

    def share_of_others(self) -> float | None:
        machine = _machine_busy_seconds()
        if machine is None or self.machine is None:
            return None
        capacity = (time.perf_counter() - self.wall) * (os.cpu_count() or 1)
        others = (machine - self.machine) - (_own_seconds() - self.own)
        return max(0.0, others / capacity) if capacity > 0 else None
