"""Parse the text form back into a Graph (the grammar is in :mod:`printer`).

Every problem with the text, syntactic or semantic (unknown op, bad
attribute, type mismatch), raises :class:`ParseError` with a line and column.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .builder import GraphBuilder
from .core import Graph, Literal, Operand, TensorType
from .dtypes import DType
from .errors import GraphcError, ParseError
from .loc import Loc
from .ops.registry import Attr, get_op

# One match per token: the space and comments before it, then the token. A
# character no token can start with is "bad"; the end of the text is "eof".
_TOKEN = re.compile(
    r"""
    (?:[ \t\r\n]+|\#[^\n]*)*
    (?:
        (?P<arrow>->)
      | (?P<value>%[A-Za-z0-9_.]+)
      | (?P<number>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+
                     |\.\d+(?:[eE][-+]?\d+)?|\d+)|-inf\b)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<punct>[(){}\[\],=:])
      | (?P<eof>\Z)
      | (?P<bad>[\s\S])
    )
    """,
    re.VERBOSE,
)
_INTEGER = re.compile(r"-?\d+")

_DTYPE_NAMES = {d.value for d in DType}
_DTYPES = {d.value: d for d in DType}
_MAX_DIGITS = 1000  # longer integers are certainly not graphc's
_MAX_NESTING = 32  # attribute tuples deeper than this are certainly not graphc's


@dataclass(frozen=True, slots=True)
class _Name:
    """A bare name in an attribute value (only ``str`` attributes accept one)."""

    text: str


class _Tok(NamedTuple):
    kind: str
    text: str
    pos: int  # offset in the text; line and column are worked out for errors only


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    append = toks.append
    make = tuple.__new__  # skips NamedTuple's Python-level constructor: this loop is hot
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        assert kind is not None
        start = m.start(kind)
        if kind == "bad":
            raise ParseError(f"unexpected character {text[start]!r}", *_line_col(text, start))
        append(make(_Tok, (kind, m[kind], start)))
        if kind == "eof":
            break
    return toks


def parse(text: str) -> Graph:
    """Parse one graph from its text form.

    >>> g = parse("graph f(%x: f32[2]) -> (f32[2]) { %0 = exp %x : f32[2]  return %0 }")
    >>> str(parse(str(g))) == str(g)
    True
    """
    if not isinstance(text, str):
        raise ParseError(f"expected IR text (str), got {type(text).__name__}", 0, 0)
    p = _Parser(_tokenize(text), text)
    g = p.graph()
    p.expect_kind("eof", "end of input")
    return g


class _Parser:
    def __init__(self, toks: list[_Tok], text: str) -> None:
        self.toks = toks
        self.text = text
        self.i = 0

    # -- token helpers --------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def where(self, tok: _Tok) -> tuple[int, int]:
        """Line and column of ``tok``."""
        return _line_col(self.text, tok.pos)

    def error(self, message: str, tok: _Tok | None = None) -> ParseError:
        t = tok or self.tok
        found = repr(t.text) if t.text else "end of input"
        return ParseError(f"{message}, found {found}", *self.where(t))

    def advance(self) -> _Tok:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        # Only punctuation, the arrow and names can spell what callers look for.
        return self.toks[self.i].text == text

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            raise self.error(f"expected '{text}'")
        return self.advance()

    def expect_kind(self, kind: str, what: str) -> _Tok:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}")
        return self.advance()

    # -- grammar ----------------------------------------------------------------
    def graph(self) -> Graph:
        self.expect("graph")
        name = self.expect_kind("name", "a graph name").text
        b = GraphBuilder(name)
        scope: dict[str, Operand] = {}
        self.expect("(")
        self.args(b, scope)
        self.expect(")")
        self.expect("->")
        self.expect("(")
        declared = self.type_list(")")
        self.expect(")")
        return self.body(b, scope, declared, name)

    def args(self, b: GraphBuilder, scope: dict[str, Operand]) -> None:
        while not self.at(")"):
            tok = self.expect_kind("value", "an argument like %x")
            self.expect(":")
            ty = self.type()
            name = tok.text[1:]
            if name in scope:
                raise self.error(f"argument {tok.text} defined twice", tok)
            scope[name] = b.input(ty, name)
            if not self.at(")"):
                self.expect(",")

    def type_list(self, end: str) -> list[TensorType]:
        types = []
        while not self.at(end):
            types.append(self.type())
            if not self.at(end):
                self.expect(",")
        return types

    def type(self) -> TensorType:
        toks, i = self.toks, self.i
        # Fast path for well-formed types (the text has thousands); anything
        # else goes the slow way below, which names the problem.
        dtype = _DTYPES.get(toks[i].text) if toks[i].kind == "name" else None
        if dtype is not None and toks[i + 1].text == "[":
            dims: list[int] = []
            j = i + 2
            while toks[j].kind == "number" and toks[j].text.isdigit() and len(toks[j].text) < 19:
                dims.append(int(toks[j].text))
                j += 1
                if toks[j].text != ",":
                    break
                j += 1
            if toks[j].text == "]":
                self.i = j + 1
                return TensorType(tuple(dims), dtype)
        tok = self.expect_kind("name", "a type like f32[2,3]")
        if tok.text not in _DTYPE_NAMES:
            raise self.error(f"unknown dtype '{tok.text}'", tok)
        self.expect("[")
        dims = []
        while not self.at("]"):
            t = self.expect_kind("number", "a dimension")
            if not t.text.isdigit():
                raise self.error("dimensions must be non-negative integers", t)
            if len(t.text) > _MAX_DIGITS:  # int() refuses very long digit strings
                raise self.error("dimension too large", t)
            dims.append(int(t.text))
            if not self.at("]"):
                self.expect(",")
        self.expect("]")
        return TensorType(tuple(dims), _DTYPES[tok.text])

    def body(
        self,
        b: GraphBuilder,
        scope: dict[str, Operand],
        declared: list[TensorType] | None,
        name: str,
    ) -> Graph:
        self.expect("{")
        while not self.at("return"):
            if self.tok.kind == "eof" or self.at("}"):
                raise self.error("expected a statement or 'return'")
            self.statement(b, scope)
        ret_tok = self.expect("return")
        outs = self.operand_list(scope, stop=("}",))
        self.expect("}")
        values = []
        for o in outs:
            if isinstance(o, Literal):
                raise self.error("return takes values, not literals", ret_tok)
            values.append(o)
        g = b.build(values, name=name)
        if declared is not None and list(g.output_types) != declared:
            shown = ", ".join(map(str, g.output_types))
            raise self.error(f"return types ({shown}) differ from the declared ones", ret_tok)
        return g

    def statement(self, b: GraphBuilder, scope: dict[str, Operand]) -> None:
        start = self.tok
        targets = [self.expect_kind("value", "a result like %0")]
        while self.at(","):
            self.advance()
            targets.append(self.expect_kind("value", "a result name"))
        self.expect("=")
        op_tok = self.expect_kind("name", "an op name")
        try:
            opdef = get_op(op_tok.text)
        except GraphcError:
            raise self.error(f"unknown op '{op_tok.text}'", op_tok) from None
        operands = self.operand_list(scope, stop=("{", ":"))
        raw_attrs: dict[str, tuple[Any, _Tok]] = {}
        if self.at("{"):
            raw_attrs = self.attr_dict()
        self.expect(":")
        types = [self.type()]
        while self.at(","):
            self.advance()
            types.append(self.type())
        subgraphs = []
        if self.at("{"):
            self.advance()
            while self.at("("):
                subgraphs.append(self.subgraph())
            self.expect("}")
        loc = self.loc() if self.at("loc") else None
        attrs = {}
        for key, (raw, tok) in raw_attrs.items():
            spec = opdef.attr_index.get(key)
            if spec is None:
                raise self.error(f"op '{opdef.name}' has no attribute '{key}'", tok)
            attrs[key] = self.attr_value(spec, raw, types, tok)
        try:
            node = b.emit_node(opdef.name, operands, attrs, subgraphs, loc)
        except GraphcError as exc:
            first = str(exc).splitlines()[0]
            raise ParseError(f"invalid '{opdef.name}': {first}", *self.where(start)) from None
        except Exception as exc:  # a malformed node must never escape as another error
            raise ParseError(f"invalid '{opdef.name}': {exc}", *self.where(start)) from None
        if [v.type for v in node.outputs] != types:
            got = ", ".join(str(v.type) for v in node.outputs)
            raise ParseError(
                f"'{opdef.name}' produces {got}, but the text says {', '.join(map(str, types))}",
                *self.where(start),
            )
        if len(targets) != len(node.outputs):
            raise ParseError(
                f"'{opdef.name}' has {len(node.outputs)} results, {len(targets)} names given",
                *self.where(start),
            )
        for tok, v in zip(targets, node.outputs):
            if tok.text[1:] in scope:
                raise self.error(f"value {tok.text} defined twice", tok)
            scope[tok.text[1:]] = v

    def subgraph(self) -> Graph:
        self.expect("(")
        b = GraphBuilder("body")
        scope: dict[str, Operand] = {}
        self.args(b, scope)
        self.expect(")")
        return self.body(b, scope, None, "body")

    def loc(self) -> Loc:
        self.expect("loc")
        self.expect("(")
        file_tok = self.expect_kind("string", "a file name string")
        self.expect(":")
        line = self.expect_kind("number", "a line number")
        col = None
        if self.at(":"):
            self.advance()
            col = self.expect_kind("number", "a column number")
        self.expect(")")
        file = self.string(file_tok)
        try:
            return Loc(file, int(line.text), int(col.text) if col else None)
        except ValueError:
            raise self.error("bad location", file_tok) from None

    def string(self, tok: _Tok) -> str:
        try:
            text = json.loads(tok.text)
        except ValueError as exc:
            raise self.error(f"bad string ({exc.args[0].split(':')[0]})", tok) from None
        assert isinstance(text, str)
        return text

    def operand_list(self, scope: dict[str, Operand], stop: tuple[str, ...]) -> list[Operand]:
        raw: list[tuple[_Tok, str | None]] = []
        while not any(self.at(s) for s in stop):
            tok = self.tok
            if tok.kind == "value":
                self.advance()
                raw.append((tok, None))
            elif tok.kind == "number" or (
                tok.kind == "name" and tok.text in ("true", "false", "inf", "nan")
            ):
                self.advance()
                suffix = None
                if self.at(":") and self.peek().kind == "name" and self.peek(2).text != "[":
                    self.advance()
                    suffix = self.advance().text
                    if suffix not in _DTYPE_NAMES:
                        raise self.error(f"unknown dtype '{suffix}'", self.toks[self.i - 1])
                raw.append((tok, suffix))
            else:
                raise self.error("expected an operand")
            if any(self.at(s) for s in stop):
                break
            self.expect(",")
        values: list[Operand] = []
        first: DType | None = None
        for tok, _ in raw:
            if tok.kind == "value":
                v = scope.get(tok.text[1:])
                if v is None:
                    raise self.error(f"undefined value {tok.text}", tok)
                first = first or v.type.dtype
        for tok, suffix in raw:
            if tok.kind == "value":
                values.append(scope[tok.text[1:]])
                continue
            dtype = DType(suffix) if suffix else first
            if dtype is None:
                raise self.error("a literal needs a dtype here (like 2:i64)", tok)
            values.append(self.literal(tok, dtype))
        return values

    def literal(self, tok: _Tok, dtype: DType) -> Literal:
        text = tok.text
        if text in ("true", "false"):
            if not dtype.is_bool:
                raise self.error(f"'{text}' is not a {dtype} literal", tok)
            return Literal(text == "true", dtype)
        if dtype.is_bool:
            raise self.error("bool literals are true or false", tok)
        value = self.number(tok)
        if dtype.is_int:
            if isinstance(value, float):
                raise self.error(f"{text} is not an integer literal", tok)
            info = np.iinfo(dtype.np)
            if not info.min <= value <= info.max:
                raise self.error(f"{text} is out of range for {dtype}", tok)
            return Literal(value, dtype)
        try:
            return Literal(float(value), dtype)
        except OverflowError:
            raise self.error(f"{text} is out of range for {dtype}", tok) from None

    def number(self, tok: _Tok) -> int | float:
        text = tok.text
        if text in ("inf", "nan", "-inf"):
            return float(text)
        if _INTEGER.fullmatch(text):
            if len(text.lstrip("-")) > _MAX_DIGITS:  # int() refuses very long digit strings
                raise self.error("number too large", tok)
            return int(text)
        try:
            return float(text)
        except ValueError:
            raise self.error("bad number", tok) from None

    def attr_dict(self) -> dict[str, tuple[Any, _Tok]]:
        self.expect("{")
        out: dict[str, tuple[Any, _Tok]] = {}
        while not self.at("}"):
            key = self.expect_kind("name", "an attribute name")
            self.expect("=")
            if key.text in out:
                raise self.error(f"attribute '{key.text}' given twice", key)
            out[key.text] = (self.attr_raw(), key)
            if not self.at("}"):
                self.expect(",")
        self.expect("}")
        return out

    def attr_raw(self, depth: int = 0) -> Any:
        tok = self.tok
        if self.at("("):
            if depth >= _MAX_NESTING:
                raise self.error("attribute value nested too deeply")
            self.advance()
            items = []
            while not self.at(")"):
                items.append(self.attr_raw(depth + 1))
                if not self.at(")"):
                    self.expect(",")
            self.expect(")")
            return tuple(items)
        if tok.kind == "number":
            self.advance()
            return self.number(tok)
        if tok.kind == "string":
            self.advance()
            return self.string(tok)
        if tok.kind == "name":
            self.advance()
            special = {"true": True, "false": False, "inf": float("inf"), "nan": float("nan")}
            if tok.text in special:
                return special[tok.text]
            if tok.text in _DTYPE_NAMES:
                return DType(tok.text)
            return _Name(tok.text)
        raise self.error("expected an attribute value")

    def attr_value(self, spec: Attr, raw: Any, types: list[TensorType], tok: _Tok) -> Any:
        if spec.kind == "array":
            ty = types[0]
            flat = raw if isinstance(raw, tuple) else (raw,)
            if len(flat) != ty.size:
                raise self.error(f"constant has {len(flat)} values but {ty} needs {ty.size}", tok)
            try:
                if ty.dtype.is_bool and not all(isinstance(v, bool) for v in flat):
                    raise ValueError("bool constants take true/false")
                if ty.dtype.is_int and not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in flat
                ):
                    raise ValueError("integer constants take integers")
                if ty.dtype.is_float and not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat
                ):
                    raise ValueError("float constants take numbers")
                return np.array(flat, dtype=ty.dtype.np).reshape(ty.shape)
            except (ValueError, TypeError, OverflowError) as exc:
                raise self.error(f"bad constant: {exc}", tok) from None
        if spec.kind == "str" and isinstance(raw, _Name):
            return raw.text
        name = _find_name(raw)
        if name is not None:
            raise self.error(f"unexpected name '{name.text}' for attribute '{spec.name}'", tok)
        if spec.kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        if spec.kind in ("int", "ints", "intss") and _has_non_int(raw):
            raise self.error(f"attribute '{spec.name}' takes integers", tok)
        return raw


def _find_name(raw: Any) -> _Name | None:
    if isinstance(raw, _Name):
        return raw
    if isinstance(raw, tuple):
        return next((n for n in map(_find_name, raw) if n is not None), None)
    return None


def _has_non_int(raw: Any) -> bool:
    if isinstance(raw, tuple):
        return any(_has_non_int(r) for r in raw)
    return isinstance(raw, bool) or not isinstance(raw, int)
