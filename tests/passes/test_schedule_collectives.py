"""schedule_collectives: IR in, IR out."""

from __future__ import annotations

import textwrap

from graphc.ir import parse, verify
from graphc.passes.schedule_collectives import schedule_collectives


def test_starts_move_up_with_their_packing_and_dones_move_down() -> None:
    g = parse(
        textwrap.dedent(
            """\
            graph f(%a: f32[2,2], %b: f32[3]) -> (f32[7], f32[3]) {
              %0 = exp %a                            : f32[2,2]
              %1 = sin %b                            : f32[3]
              %2 = tanh %1                           : f32[3]
              %3 = reshape %0 {shape=(4,)}           : f32[4]
              %4 = concatenate %3, %1 {axis=0}       : f32[7]
              %5 = all_reduce_start %4               : f32[7]
              %6 = all_reduce_done %5                : f32[7]
              %7 = cos %2                            : f32[3]
              return %6, %7
            }
            """
        )
    )
    out = schedule_collectives(g)
    verify(out)
    assert [n.op for n in out.nodes] == [
        "exp", "reshape", "sin", "concatenate", "all_reduce_start", "tanh", "cos",
        "all_reduce_done",
    ]  # fmt: skip
    # Nothing to do without a start.
    plain = parse("graph f(%x: f32[2]) -> (f32[2]) {\n  %0 = exp %x : f32[2]\n  return %0\n}")
    assert schedule_collectives(plain) is plain
