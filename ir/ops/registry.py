"""The op registry: one :class:`OpDef` per primitive.

An OpDef holds what *defines* an op and nothing a backend needs to implement
it: operand names, the attribute schema, the type rule, the NumPy reference
semantics, the VJP rule and traits. Lowerings live with the backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import TensorType
from ..dtypes import DType
from ..errors import OpTypeError, UnsupportedError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Attribute kinds understood by the printer, parser and verifier.
ATTR_KINDS = ("int", "float", "bool", "str", "dtype", "ints", "intss", "array", "scalar")


@dataclass(frozen=True)
class Attr:
    """One entry of an op's attribute schema.

    Kinds: ``int``, ``float``, ``bool``, ``str``, ``dtype``, ``ints`` (tuple of
    ints), ``intss`` (tuple of int tuples), ``array`` (only ``constant``) and
    ``scalar`` (a bool, int or float).
    """

    name: str
    kind: str
    default: Any = REQUIRED

    def __post_init__(self) -> None:
        assert self.kind in ATTR_KINDS, f"unknown attr kind {self.kind}"


TypeRule = Callable[..., "TensorType | tuple[TensorType, ...]"]
Reference = Callable[..., Any]
VJPRule = Callable[..., Any]


@dataclass(frozen=True)
class OpDef:
    """Everything that defines a primitive op.

    ``operands`` names the operands; a final name starting with ``*`` is
    variadic. ``type_rule(*types, **attrs)`` returns the output type(s) or
    raises :class:`OpTypeError`. ``reference(*arrays, **attrs)`` is plain NumPy.
    ``vjp(b, ct, out, *inputs, **attrs)`` builds input cotangents with builder
    ``b`` (``ct``/``out`` are tuples for multi-output ops); ``None`` means the
    op is never differentiated. ``num_subgraphs`` is how many body graphs the
    node carries (fusion bodies, cond branches, scan bodies).

    ``traits`` are what passes query instead of op names: ``elementwise``,
    ``commutative``, ``linear``, ``reduction``, ``shape``, ``comparison``,
    ``pure``, and ``lowering_only`` for ops that only lowering passes create
    (the differentiator rejects them).
    """

    name: str
    operands: tuple[str, ...]
    attrs: tuple[Attr, ...]
    type_rule: TypeRule
    reference: Reference
    vjp: VJPRule | None = None
    traits: frozenset[str] = frozenset()
    num_subgraphs: int = 0
    doc: str = ""
    attr_index: Mapping[str, Attr] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attr_index", {a.name: a for a in self.attrs})

    @property
    def variadic(self) -> bool:
        return bool(self.operands) and self.operands[-1].startswith("*")

    def has(self, trait: str) -> bool:
        return trait in self.traits

    def check_arity(self, count: int) -> None:
        fixed = len(self.operands) - (1 if self.variadic else 0)
        ok = count >= fixed if self.variadic else count == fixed
        if not ok:
            want = f"at least {fixed}" if self.variadic else str(fixed)
            raise OpTypeError(f"{self.name}: expects {want} operands, got {count}")

    def normalize_attrs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check attributes against the schema, coerce them, fill in defaults."""
        unknown = set(given) - set(self.attr_index)
        if unknown:
            known = ", ".join(self.attr_index) or "none"
            raise OpTypeError(
                f"{self.name}: unknown attribute(s) {', '.join(sorted(unknown))} (known: {known})"
            )
        out: dict[str, Any] = {}
        for a in self.attrs:
            if a.name in given:
                out[a.name] = coerce_attr(self.name, a, given[a.name])
            elif a.default is REQUIRED:
                raise OpTypeError(f"{self.name}: missing required attribute '{a.name}'")
            else:
                out[a.name] = a.default
        return out

    def infer(
        self, types: tuple[TensorType, ...], attrs: Mapping[str, Any]
    ) -> tuple[TensorType, ...]:
        """Run the type rule; always returns a tuple. Results of pure ops without
        subgraphs are remembered by operand types and attributes: an unrolled
        loop asks the same question for every step, in tracing, in the verifier
        and in every pass that copies nodes."""
        key = None
        if not self.num_subgraphs and "pure" in self.traits:
            # The type of each attribute is part of the key: 1, 1.0 and True are
            # equal dict keys, yet a "scalar" attribute may be any of them.
            try:
                key = (self.name, types, tuple((k, type(v), v) for k, v in attrs.items()))
                found = _INFERRED.get(key)
            except TypeError:  # an array attribute (constants): not hashable
                key = found = None
            if found is not None:
                return found
        result = self.type_rule(*types, **attrs)
        out = result if isinstance(result, tuple) else (result,)
        if key is not None:
            if len(_INFERRED) >= _INFERRED_LIMIT:
                _INFERRED.clear()
            _INFERRED[key] = out
        return out


# Type rules are pure functions of (op, operand types, attributes).
_INFERRED: dict[Any, tuple[TensorType, ...]] = {}
_INFERRED_LIMIT = 1 << 14


def coerce_attr(op: str, spec: Attr, value: Any) -> Any:
    """Coerce ``value`` to the canonical Python form of ``spec.kind``."""
    kind = spec.kind
    try:
        if kind == "int":
            if isinstance(value, (bool, np.bool_)) or int(value) != value:
                raise TypeError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError
            return bool(value)
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
        if kind == "dtype":
            return value if isinstance(value, DType) else DType.parse(value)
        if kind == "ints":
            return tuple(_as_int(v) for v in value)
        if kind == "intss":
            return tuple(tuple(_as_int(v) for v in row) for row in value)
        if kind == "scalar":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, (int, np.integer)):
                return int(value)
            return float(value)
        if kind == "array":
            if not isinstance(value, np.ndarray):
                raise TypeError
            if value.flags.writeable or not value.flags.c_contiguous:
                # Graphs are immutable: keep a private read-only copy.
                value = np.array(value, copy=True, order="C")
                value.flags.writeable = False
            return value
    except UnsupportedError:
        raise
    except (TypeError, ValueError) as exc:
        raise OpTypeError(
            f"{op}: attribute '{spec.name}' must be of kind {kind}, got {value!r}"
        ) from exc
    raise AssertionError(kind)


def _as_int(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)) or int(v) != v:
        raise TypeError(v)
    return int(v)


_REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add an op to the registry (each name once)."""
    assert opdef.name not in _REGISTRY, f"op {opdef.name} registered twice"
    _REGISTRY[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    """The OpDef named ``name``; raises :class:`UnsupportedError` if there is none."""
    found = _REGISTRY.get(name)
    if found is None:
        raise UnsupportedError(f"unknown op '{name}'")
    return found


def all_ops() -> dict[str, OpDef]:
    """Every registered op, by name."""
    return dict(_REGISTRY)


def set_vjp(name: str, rule: VJPRule) -> None:
    """Attach a VJP rule to an op after its definition (used by op files that
    define the derivative right below the op)."""
    op = _REGISTRY[name]
    _REGISTRY[name] = OpDef(
        op.name,
        op.operands,
        op.attrs,
        op.type_rule,
        op.reference,
        rule,
        op.traits,
        op.num_subgraphs,
        op.doc,
    )
