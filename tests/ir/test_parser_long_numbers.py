"""Integers too long for int() are a ParseError with a position, not a ValueError."""

from __future__ import annotations

import pytest

from graphc.ir import ParseError, parse

LONG = "9" * 5000


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        (f"graph f(%x: f32[{LONG}]) -> () {{ return }}", "dimension too large", 17),
        (
            f"graph f(%x: i64[2]) -> (i64[2]) {{ %0 = add %x, -{LONG} : i64[2] return %0 }}",
            "number too large",
            48,
        ),
    ],
    ids=["dimension", "literal"],
)
def test_a_very_long_integer_is_a_parse_error(text: str, message: str, col: int) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse(text)
    assert (info.value.line, info.value.col) == (1, col)


def test_long_but_ordinary_numbers_still_parse() -> None:
    big = "1" + "0" * 300 + ".5"
    g = parse(f"graph f(%x: f64[2]) -> (f64[2]) {{ %0 = add %x, {big} : f64[2] return %0 }}")
    assert g.nodes[0].inputs[1].value == float(big)
