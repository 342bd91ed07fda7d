"""Payload shapes: what a payload's annotations allow, worked out once per type.

A shape checks a value against its type: strictly (an instance as the handler declares it, as
``mypy`` would) or leniently (the same data in its JSON form too: a dict for a class, ISO text for
a datetime, a list for a set). It describes itself as JSON (the store records that description
for each job type) and is rebuilt from that description to check JSON payloads without the
class (``wireframe submit``). Both checks are the same code: a shape rebuilt from a description
is a shape without its classes, which checks the JSON form only.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from wireframe.scheduler.errors import ConfigError

__all__ = [
    "Mismatch",
    "ObjectShape",
    "Shape",
    "describe_hint",
    "init_fields",
    "object_shape",
    "shape_from_description",
    "shape_of",
    "shape_text",
    "use_default_encoder",
]

SUPPORTED = (
    "int, float, str, bool, None, Any, list[X], tuple, set[X], frozenset[X], dict[str, X],"
    " Decimal, datetime, date, time, UUID, enums, Literal, unions (X | None), attrs classes"
    " and dataclasses"
)


class Mismatch(Exception):
    """A value does not fit its shape; `path` grows (innermost first) as it propagates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def at(self, root: str) -> str:
        """``root.items[2].n: reason``."""
        return f"{root}{''.join(reversed(self.path))}: {self.reason}"


def show(value: object) -> str:
    """A bad value for a message: its repr (cut short) and its type."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__qualname__})"


class Shape:
    """What one annotation allows (a node of a payload's shape tree)."""

    __slots__ = ()
    kind = "any"

    def check(self, value: object, lenient: bool) -> None:
        """Raise `Mismatch` unless `value` fits; `lenient` also takes the JSON form."""

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """This shape as JSON (`shape_from_description` reads it back)."""
        return {"kind": self.kind}

    def text(self) -> str:
        """The type as Python spells it, e.g. ``list[Item] | None``."""
        return "Any"

    def fail(self, value: object) -> Mismatch:
        """The mismatch of a value of the wrong type."""
        return Mismatch(f"expected {self.text()}, got {show(value)}")


ANY = Shape()


class Scalar(Shape):
    """int, float, str, bool or None (an int is a float; a bool is no int)."""

    __slots__ = ("accepts", "kind", "name")

    def __init__(self, kind: str, name: str, accepts: tuple[type, ...]) -> None:
        self.kind = kind
        self.name = name
        self.accepts = accepts

    def check(self, value: object, lenient: bool) -> None:
        """Exact type first (the common case), then subclasses, never a bool for a number."""
        kind = value.__class__
        if kind in self.accepts:
            return
        if isinstance(value, self.accepts) and not (
            isinstance(value, bool) and bool not in self.accepts
        ):
            return
        raise self.fail(value)

    def text(self) -> str:
        """The type's name."""
        return self.name


INT = Scalar("int", "int", (int,))
FLOAT = Scalar("float", "float", (float, int))
STR = Scalar("str", "str", (str,))
BOOL = Scalar("bool", "bool", (bool,))
NULL = Scalar("null", "None", (type(None),))
SCALARS: dict[object, Scalar] = {int: INT, float: FLOAT, str: STR, bool: BOOL, type(None): NULL}


def _parse_decimal(value: object) -> decimal.Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, decimal.Decimal | int):
        return decimal.Decimal(value)
    if isinstance(value, float):
        return decimal.Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
    return None


class Text(Shape):
    """A value stored as text: Decimal, datetime, date, time or UUID (JSON form: its text)."""

    __slots__ = ("cls", "kind", "parse")

    def __init__(self, kind: str, cls: type, parse: Callable[[str], object]) -> None:
        self.kind = kind
        self.cls = cls
        self.parse = parse

    def check(self, value: object, lenient: bool) -> None:
        """An instance of the exact type (a datetime is no date), or its text when lenient."""
        if self.cls is decimal.Decimal:
            number = _parse_decimal(value)
            if number is None or not (lenient or isinstance(value, decimal.Decimal)):
                raise self.fail(value)
            if not number.is_finite():
                raise Mismatch(f"Decimal {value!r} is not finite")
            return
        if isinstance(value, self.cls) and not (
            self.cls is dt.date and isinstance(value, dt.datetime)
        ):
            return
        if lenient and isinstance(value, str):
            try:
                self.parse(value)
            except ValueError:
                raise Mismatch(
                    f"expected {self.text()} (ISO 8601 text), got {show(value)}"
                ) from None
            return
        raise self.fail(value)

    def text(self) -> str:
        """The type's name."""
        return self.cls.__name__


TEXTS: dict[object, Text] = {
    decimal.Decimal: Text("decimal", decimal.Decimal, decimal.Decimal),
    dt.datetime: Text("datetime", dt.datetime, dt.datetime.fromisoformat),
    dt.date: Text("date", dt.date, dt.date.fromisoformat),
    dt.time: Text("time", dt.time, dt.time.fromisoformat),
    uuid.UUID: Text("uuid", uuid.UUID, uuid.UUID),
}
TEXT_KINDS = {shape.kind: shape for shape in TEXTS.values()}


class Items(Shape):
    """list[X], a variadic tuple[X, ...], set[X] or frozenset[X] (JSON form: a list)."""

    __slots__ = ("item", "kind")

    def __init__(self, kind: str, item: Shape) -> None:
        self.kind = kind
        self.item = item

    def check(self, value: object, lenient: bool) -> None:
        """A list or tuple (a set or frozenset for a set), each item checked."""
        if self.kind in ("set", "frozenset"):
            ok = isinstance(value, set | frozenset) or (lenient and isinstance(value, list | tuple))
        else:
            ok = isinstance(value, list | tuple)
        if not ok:
            raise self.fail(value)
        item = self.item
        if item is ANY:
            return
        elements: list[object] | tuple[object, ...] | set[object] | frozenset[object] = value  # type: ignore[assignment]
        for index, element in enumerate(elements):
            try:
                item.check(element, lenient)
            except Mismatch as exc:
                exc.path.append(
                    f"[{index}]" if self.kind in ("list", "tuple") else f"[{element!r}]"
                )
                raise

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "list", "items": ...}``."""
        return {"kind": self.kind, "items": self.item.describe(seen)}

    def text(self) -> str:
        """``list[X]``, ``tuple[X, ...]``..."""
        if self.kind == "tuple":
            return f"tuple[{self.item.text()}, ...]"
        return f"{self.kind}[{self.item.text()}]"


class Fixed(Shape):
    """tuple[X, Y]: a list or tuple of exactly those items."""

    __slots__ = ("items",)
    kind = "fixed"

    def __init__(self, items: tuple[Shape, ...]) -> None:
        self.items = items

    def check(self, value: object, lenient: bool) -> None:
        """A list or tuple of the right length, each item checked."""
        if not isinstance(value, list | tuple) or len(value) != len(self.items):
            raise self.fail(value)
        for index, (shape, element) in enumerate(zip(self.items, value, strict=True)):
            try:
                shape.check(element, lenient)
            except Mismatch as exc:
                exc.path.append(f"[{index}]")
                raise

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "fixed", "items": [...]}``."""
        return {"kind": "fixed", "items": [s.describe(seen) for s in self.items]}

    def text(self) -> str:
        """``tuple[X, Y]``."""
        return f"tuple[{', '.join(s.text() for s in self.items) or '()'}]"


class Dict(Shape):
    """dict[str, X] (or a Mapping): string keys, each value checked."""

    __slots__ = ("value",)
    kind = "dict"

    def __init__(self, value: Shape) -> None:
        self.value = value

    def check(self, value: object, lenient: bool) -> None:
        """A mapping with string keys."""
        if not isinstance(value, Mapping):
            raise self.fail(value)
        for key, item in value.items():
            if not isinstance(key, str):
                raise Mismatch(f"dict key {key!r} ({type(key).__name__}) is not a string")
            try:
                self.value.check(item, lenient)
            except Mismatch as exc:
                exc.path.append(f"[{key!r}]")
                raise

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "dict", "values": ...}``."""
        return {"kind": "dict", "values": self.value.describe(seen)}

    def text(self) -> str:
        """``dict[str, X]``."""
        return f"dict[str, {self.value.text()}]"


class Union(Shape):
    """X | Y | None."""

    __slots__ = ("options",)
    kind = "union"

    def __init__(self, options: tuple[Shape, ...]) -> None:
        self.options = options

    def check(self, value: object, lenient: bool) -> None:
        """Fits one option; with one option besides None, that option's error is the error."""
        errors: list[Mismatch] = []
        for option in self.options:
            try:
                option.check(value, lenient)
                return
            except Mismatch as exc:
                errors.append(exc)
        real = [
            (option, error)
            for option, error in zip(self.options, errors, strict=True)
            if option is not NULL
        ]
        if len(real) == 1 and value is not None and real[0][1].path:
            raise real[0][1]  # deeper inside the one option that could be meant: say where
        raise self.fail(value)

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "union", "options": [...]}``."""
        return {"kind": "union", "options": [o.describe(seen) for o in self.options]}

    def text(self) -> str:
        """``X | Y``."""
        return " | ".join(o.text() for o in self.options)


def _same(a: object, b: object) -> bool:
    """Equal and of the same JSON kind (True is not 1)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


class Choice(Shape):
    """Literal[...] or an enum: one of some values (an enum's JSON form is a member's value)."""

    __slots__ = ("cls", "kind", "members", "name", "values")

    def __init__(
        self, kind: str, values: tuple[object, ...], cls: type[enum.Enum] | None = None
    ) -> None:
        self.kind = kind
        self.cls = cls
        self.name = "" if cls is None else qualified(cls)
        self.members = values
        self.values = tuple(v.value if isinstance(v, enum.Enum) else v for v in values)

    def check(self, value: object, lenient: bool) -> None:
        """One of the members (or, leniently, of their JSON values)."""
        if self.cls is not None and isinstance(value, self.cls):
            return
        if self.kind == "literal" and any(
            value is m or (not isinstance(m, enum.Enum) and _same(value, m)) for m in self.members
        ):
            return
        if (lenient or (self.cls is None and self.kind == "enum")) and any(
            _same(value, v) for v in self.values
        ):
            return
        allowed = ", ".join(repr(v) for v in self.values)
        raise Mismatch(f"expected {self.text()} (one of {allowed}), got {show(value)}")

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "enum", "class": ..., "values": [...]}`` or a literal's values."""
        data: dict[str, Any] = {"kind": self.kind, "values": list(self.values)}
        if self.kind == "enum":
            data["class"] = self.name
        return data

    def text(self) -> str:
        """The enum's name or ``Literal[...]``."""
        if self.kind == "enum":
            return self.name.rpartition(".")[2]
        return f"Literal[{', '.join(repr(v) for v in self.values)}]"


@attrs.frozen
class Field:
    """One ``__init__`` field of a payload class."""

    key: str
    """Its name in the JSON object (the ``__init__`` argument)."""
    attr: str
    """The attribute holding it."""
    shape: Shape
    required: bool
    default: object = attrs.NOTHING
    """The default as JSON, when it has one that JSON can hold."""
    converted: bool = False
    """An attrs converter takes whatever it is given: a dict payload is not checked."""


class ObjectShape(Shape):
    """An attrs class or a dataclass: an instance, or (leniently) a dict of its fields."""

    __slots__ = ("by_key", "cls", "fields", "flat", "name")
    kind = "object"

    def __init__(self, name: str, cls: type | None) -> None:
        self.name = name
        self.cls = cls
        self.fields: tuple[Field, ...] = ()
        self.by_key: dict[str, Field] = {}
        self.flat: tuple[tuple[str, str, tuple[type, ...]], ...] | None = None
        """When every field is a plain scalar: ``(attribute, '"key":', exact types allowed)``
        of each field in the order of their keys (what `codec` writes a payload with)."""

    def set_fields(self, fields: tuple[Field, ...]) -> None:
        """Fill in the fields (after the shape is known, so a class may refer to itself)."""
        self.fields = fields
        self.by_key = {f.key: f for f in fields}
        flat: list[tuple[str, str, tuple[type, ...]]] = []
        for f in fields:
            options = f.shape.options if isinstance(f.shape, Union) else (f.shape,)
            kinds = tuple(o.accepts[0] for o in options if isinstance(o, Scalar) and o is not FLOAT)
            if len(kinds) != len(options) or f.key != f.attr:
                return
            flat.append((f.key, f.attr, kinds))
        encode = json.encoder.encode_basestring_ascii
        self.flat = tuple((attr, encode(key) + ":", kinds) for key, attr, kinds in sorted(flat))

    def check(self, value: object, lenient: bool) -> None:
        """Each field of an instance; or every required key of a dict and no unknown key."""
        cls = self.cls
        if cls is not None and isinstance(value, cls):
            for f in self.fields:
                try:
                    f.shape.check(getattr(value, f.attr), lenient)
                except Mismatch as exc:
                    exc.path.append(f".{f.key}")
                    raise
                except AttributeError:  # an attrs field set later (init=False) or deleted
                    continue
            return
        if not isinstance(value, Mapping):
            also = " (or a dict of its fields)" if cls is not None else " (a JSON object)"
            raise Mismatch(f"expected {self.text()}{also}, got {show(value)}")
        for key in value:
            if key not in self.by_key:
                error = Mismatch(
                    f"unexpected field: {self.text()} has {', '.join(self.by_key) or 'no fields'}"
                )
                error.path.append(f".{key}" if isinstance(key, str) else f"[{key!r}]")
                raise error
        for f in self.fields:
            if f.key not in value:
                if f.required:
                    error = Mismatch(f"missing: a required field of {self.text()}")
                    error.path.append(f".{f.key}")
                    raise error
                continue
            if f.converted:
                continue
            try:
                f.shape.check(value[f.key], True)
            except Mismatch as exc:
                exc.path.append(f".{f.key}")
                raise

    def describe(self, seen: set[str]) -> dict[str, Any]:
        """``{"kind": "object", "class": ..., "fields": [...]}``; a class seen before by name."""
        if self.name in seen:
            return {"kind": "object", "class": self.name, "ref": True}
        seen.add(self.name)
        fields = []
        for f in self.fields:
            data: dict[str, Any] = {
                "name": f.key,
                "type": f.shape.describe(seen),
                "required": f.required,
            }
            if f.default is not attrs.NOTHING:
                data["default"] = f.default
            if f.converted:
                data["converted"] = True
            fields.append(data)
        return {"kind": "object", "class": self.name, "fields": fields}

    def text(self) -> str:
        """The class's name."""
        return self.name.rpartition(".")[2]


# --------------------------------------------------------------------------- from annotations

_SEQUENCES: tuple[object, ...] = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    typing.List,  # noqa: UP006 - old spellings are valid annotations too
    typing.Sequence,
)
_SETS: dict[object, str] = {
    set: "set",
    frozenset: "frozenset",
    collections.abc.Set: "frozenset",
    collections.abc.MutableSet: "set",
    typing.Set: "set",  # noqa: UP006
    typing.FrozenSet: "frozenset",  # noqa: UP006
    typing.AbstractSet: "frozenset",
}
_MAPPINGS: tuple[object, ...] = (
    dict,
    Mapping,
    collections.abc.MutableMapping,
    typing.Mapping,
    typing.MutableMapping,
    typing.Dict,  # noqa: UP006
)

_objects: dict[type, ObjectShape] = {}
"""Every payload class's shape, worked out once (a class refers to itself through it)."""


def _type_text(hint: object) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def qualified(cls: type) -> str:
    """``module.QualName`` of a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def shape_of(hint: object, *, where: str) -> Shape:
    """The shape of an annotation; ConfigError naming `where` if wireframe cannot hold it."""
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return ANY
    if hint is None or hint is type(None):
        return NULL
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return shape_of(args[0], where=where)
    if isinstance(hint, typing.NewType):
        return shape_of(hint.__supertype__, where=where)
    if origin is typing.Union or origin is types.UnionType:
        options: list[Shape] = []
        for arg in args:
            shape = shape_of(arg, where=where)
            options.extend(shape.options if isinstance(shape, Union) else (shape,))
        return Union(tuple(options))
    if origin is typing.Literal:
        return Choice("literal", args)
    if isinstance(hint, type) and origin is None:
        return _class_shape(hint, where)
    if origin in _SEQUENCES:
        return Items("list", shape_of(args[0], where=where) if args else ANY)
    if origin in _SETS:
        return Items(_SETS[origin], shape_of(args[0], where=where) if args else ANY)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return Items("tuple", shape_of(args[0], where=where))
        return Fixed(tuple(shape_of(arg, where=where) for arg in args if arg != ()))
    if origin in _MAPPINGS:
        if args and args[0] not in (str, Any):
            raise ConfigError(
                f"{where}: {_type_text(hint)}: a payload's dict keys are JSON object keys, so"
                " they must be str"
            )
        return Dict(shape_of(args[1], where=where) if len(args) == 2 else ANY)
    if isinstance(origin, type) and (attrs.has(origin) or dataclasses.is_dataclass(origin)):
        return object_shape(origin)
    raise ConfigError(
        f"{where}: {_type_text(hint)} is not a type a payload can hold (supported: {SUPPORTED})"
    )


def _class_shape(cls: type, where: str) -> Shape:
    """The shape of a plain class annotation."""
    if cls in SCALARS:
        return SCALARS[cls]
    if cls in TEXTS:
        return TEXTS[cls]
    if issubclass(cls, enum.Enum):
        return Choice("enum", tuple(cls), cls)
    if attrs.has(cls) or dataclasses.is_dataclass(cls):
        return object_shape(cls)
    if cls in _SEQUENCES or cls is tuple:
        return Items("tuple" if cls is tuple else "list", ANY)
    if cls in _SETS:
        return Items(_SETS[cls], ANY)
    if cls in _MAPPINGS:
        return Dict(ANY)
    for base in (bool, int, float, str):  # a str or int subclass is stored as the plain type
        if issubclass(cls, base):
            return SCALARS[base]
    raise ConfigError(
        f"{where}: {cls.__qualname__} is not a type a payload can hold (supported: {SUPPORTED})"
    )


def init_fields(cls: type) -> list[tuple[str, str, object, bool, object, bool]]:
    """``(attribute, key, annotation, required, default, converted)`` of each ``__init__``
    field of an attrs class or dataclass (the annotation as written: text, under postponed
    annotations)."""
    out: list[tuple[str, str, object, bool, object, bool]] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if not a.init:
                continue
            default = a.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = attrs.NOTHING
                required = False
            else:
                required = default is attrs.NOTHING
            key = a.alias or a.name.lstrip("_")
            out.append((a.name, key, a.type, required, default, a.converter is not None))
        return out
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        no_default = f.default is dataclasses.MISSING
        required = no_default and f.default_factory is dataclasses.MISSING
        default = attrs.NOTHING if no_default else f.default
        out.append((f.name, f.name, f.type, required, default, False))
    return out


def object_shape(cls: type) -> ObjectShape:
    """The shape of an attrs class or dataclass, worked out once; ConfigError if one of its
    annotations cannot be resolved or held."""
    known = _objects.get(cls)
    if known is not None:
        return known
    shape = ObjectShape(qualified(cls), cls)
    _objects[cls] = shape
    try:
        try:
            hints = typing.get_type_hints(cls)
        except Exception as exc:
            raise ConfigError(
                f"payload class {cls.__qualname__}: cannot resolve its annotations:"
                f" {type(exc).__name__}: {exc}"
            ) from None
        fields: list[Field] = []
        for attr, key, annotation, required, default, converted in init_fields(cls):
            hint = hints.get(attr, annotation)
            where = f"payload class {cls.__qualname__}, field {key!r}"
            if isinstance(hint, str):
                raise ConfigError(f"{where}: cannot resolve the annotation {hint!r}")
            field_shape = ANY if hint is None else shape_of(hint, where=where)
            fields.append(
                Field(key, attr, field_shape, required, _json_default(default), converted)
            )
        shape.set_fields(tuple(fields))
    except BaseException:
        del _objects[cls]
        raise
    return shape


_default_encoder: Callable[[object], object] | None = None
"""How a field's default becomes JSON: the codec's rules (`use_default_encoder`; the codec
imports this module, so it hands them in rather than this module importing it)."""


def use_default_encoder(encode: Callable[[object], object]) -> None:
    """Set how defaults are written as JSON in descriptions (`encode` raises if it cannot)."""
    global _default_encoder
    _default_encoder = encode


def _json_default(default: object) -> object:
    """A default as JSON, or NOTHING if JSON cannot hold it."""
    if default is attrs.NOTHING or _default_encoder is None:
        return attrs.NOTHING
    try:
        return _default_encoder(default)
    except Exception:
        return attrs.NOTHING


def describe_hint(shape: Shape) -> dict[str, Any]:
    """A shape as JSON."""
    return shape.describe(set())


def shape_text(description: Mapping[str, Any]) -> str:
    """A described type as Python spells it (``wireframe types``)."""
    return shape_from_description(description).text()


# --------------------------------------------------------------------------- from descriptions


def shape_from_description(data: Mapping[str, Any]) -> Shape:
    """Rebuild a shape (without its classes) from `Shape.describe`; ValueError if malformed."""
    return _Reader().read(data)


class _Reader:
    """Reads a description, resolving references to classes described earlier in it."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectShape] = {}

    def read(self, data: object) -> Shape:
        """The shape `data` describes."""
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
            raise ValueError(f"not a type description: {data!r:.100}")
        kind = data["kind"]
        if kind == "any":
            return ANY
        for scalar in SCALARS.values():
            if scalar.kind == kind:
                return scalar
        if kind in TEXT_KINDS:
            return TEXT_KINDS[kind]
        if kind in ("list", "tuple", "set", "frozenset"):
            return Items(kind, self.read(data.get("items")))
        if kind == "fixed":
            return Fixed(tuple(self.read(item) for item in data.get("items") or ()))
        if kind == "dict":
            return Dict(self.read(data.get("values")))
        if kind == "union":
            return Union(tuple(self.read(option) for option in data.get("options") or ()))
        if kind in ("literal", "enum"):
            choice = Choice(kind, tuple(data.get("values") or ()))
            choice.name = str(data.get("class", ""))
            return choice
        if kind == "object":
            return self._object(data)
        raise ValueError(f"unknown kind of type {kind!r}")

    def _object(self, data: Mapping[str, Any]) -> ObjectShape:
        name = str(data.get("class", "object"))
        if data.get("ref"):
            if name not in self.objects:
                raise ValueError(f"a reference to {name!r} before its description")
            return self.objects[name]
        shape = self.objects[name] = ObjectShape(name, None)
        fields = []
        for f in data.get("fields") or ():
            fields.append(
                Field(
                    str(f["name"]),
                    str(f["name"]),
                    self.read(f["type"]),
                    bool(f.get("required", True)),
                    f.get("default", attrs.NOTHING),
                    bool(f.get("converted", False)),
                )
            )
        shape.set_fields(tuple(fields))
        return shape
