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


def test_dead_code_keeps_the_carries_a_collective_in_a_scan_body_reads() -> None:
    from graphc.ir import parse, verify
    from graphc.passes.dce import eliminate_dead_code

    # carry %a reaches no output, but the body's all_reduce reads it: dropping
    # the carry would leave the collective reading an undefined value
    g = parse(
        """
        graph f(%c: f32[2], %h: f32[2]) -> (f32[2]) {
          %0, %1 = scan %c, %h {length=3, num_carry=2, num_xs=0, num_consts=0} : f32[2], f32[2] {
            (%a: f32[2], %b: f32[2]) {
              %t0 = all_reduce %a : f32[2]
              %t1 = exp %b : f32[2]
              return %a, %t1
            }
          }
          return %1
        }"""
    )
    out = eliminate_dead_code(g)
    verify(out)
    (scan,) = [n for n in out.nodes if n.op == "scan"]
    assert scan.attrs["num_carry"] == 2
    assert any(m.op == "all_reduce" for m in scan.subgraphs[0].nodes)
