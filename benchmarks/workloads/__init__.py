"""The workloads of issue 4, in order. Each module defines `WORKLOAD`."""

from __future__ import annotations

from ..core import Workload
from . import (
    w1_mlp_digits,
    w2_mlp_wide,
    w3_elementwise,
    w4_deep_tanh,
    w5_char_rnn,
    w6_wide_tanh,
)

WORKLOADS: dict[str, Workload] = {
    m.WORKLOAD.name: m.WORKLOAD
    for m in (w1_mlp_digits, w2_mlp_wide, w3_elementwise, w4_deep_tanh, w5_char_rnn, w6_wide_tanh)
}
