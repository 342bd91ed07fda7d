"""Payload and result (de)serialisation, job type names and handler signature checks.

Payloads are attrs instances, dataclass instances (or JSON-able dicts) and results are
JSON-able values; both are stored as canonical JSON text. Converting to JSON turns attrs and
dataclass instances into dicts (keyed by each field's ``__init__`` argument name), tuples into
lists, sets and frozensets into sorted lists, enums into their values,
``datetime``/``date``/``time`` into ISO 8601 text and ``UUID`` and ``Decimal`` into text.
Decoding into a payload class uses its field annotations to convert those back (nested
classes, ``list[X]``, ``tuple[X, ...]``, ``set[X]``, ``frozenset[X]``, ``dict[str, X]``,
``X | None``, enums, datetimes, UUIDs, Decimals). A payload's field types are checked when it
is submitted (`wireframe.scheduler._shapes`).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import inspect
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from wireframe.scheduler._shapes import (
    ANY,
    Dict,
    Mismatch,
    ObjectShape,
    Shape,
    init_fields,
    object_shape,
    shape_of,
    use_default_encoder,
)
from wireframe.scheduler.errors import ConfigError, PayloadError

__all__ = [
    "canonical_json",
    "decode_payload",
    "decode_result",
    "decode_value",
    "encode_payload",
    "encode_result",
    "job_type_name",
    "payload_type_of",
    "result_type_of",
    "to_jsonable",
    "validate_name",
]

_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_MAPPING_TYPES: tuple[object, ...] = (
    dict,
    Mapping,
    collections.abc.MutableMapping,
    typing.Mapping,
    typing.MutableMapping,
    typing.Dict,  # noqa: UP006 - the old spelling is a valid annotation too
)


# --------------------------------------------------------------------------- names


def validate_name(name: object, *, what: str) -> str:
    """Return ``name`` if it is a valid domain or job name, else raise ``ConfigError``.

    A valid name is non-empty, made of ``A-Z a-z 0-9 _ . -`` and so never contains ``::``.
    """
    if not isinstance(name, str):
        raise ConfigError(f"{what} {name!r} must be a string, not {type(name).__name__}")
    if not name:
        raise ConfigError(f"{what} must not be empty")
    if _NAME_RE.fullmatch(name) is None:
        raise ConfigError(
            f"{what} {name!r} is invalid: use only letters, digits, '_', '.' and '-'"
            " (and never '::')"
        )
    return name


def job_type_name(domain: str, name: str) -> str:
    """The job type ``"<domain>::<name>"``, after checking both parts with ``validate_name``."""
    validate_name(domain, what="domain name")
    validate_name(name, what="job name")
    return f"{domain}::{name}"


# --------------------------------------------------------------------------- handlers


def _describe_callable(fn: object) -> str:
    """``module.qualname(signature)`` for error messages, as far as it can be known."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{name}(...)"
    # Show postponed (string) annotations as written, not quoted.
    parameters = [
        p.replace(annotation=_AsWritten(p.annotation)) if isinstance(p.annotation, str) else p
        for p in signature.parameters.values()
    ]
    returns = signature.return_annotation
    if isinstance(returns, str):
        returns = _AsWritten(returns)
    return f"{name}{signature.replace(parameters=parameters, return_annotation=returns)}"


class _AsWritten:
    """An annotation string whose repr is the string itself (for signature text)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _type_text(hint: object) -> str:
    """A readable spelling of a type annotation."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def _resolve_annotation(fn: Callable[..., Any], annotation: object, *, where: str) -> object:
    """Evaluate one (possibly string) annotation in the handler's module namespace."""
    if not isinstance(annotation, str):
        return annotation
    namespace = getattr(inspect.unwrap(fn), "__globals__", None)
    try:
        if not isinstance(namespace, dict):
            raise NameError(f"no module namespace to resolve {annotation!r} in")
        return eval(annotation, namespace)  # the same evaluation typing.get_type_hints does
    except Exception as exc:
        raise ConfigError(
            f"{where}: cannot resolve the payload annotation {annotation!r} of handler"
            f" {_describe_callable(fn)}: {type(exc).__name__}: {exc}"
        ) from None


def payload_type_of(fn: Callable[..., Any], *, where: str) -> type | None:
    """Check a handler ``async def handler(job: T, ctx) -> R`` and return its payload type.

    Returns the attrs class or dataclass ``T``, ``dict`` for ``dict``/``dict[str, ...]``/
    ``Mapping``, or ``None`` when the first parameter is unannotated (or ``Any``): any JSON
    object. Raises ``ConfigError`` naming the handler when it is not ``async def``, does not
    take exactly two positional parameters, has annotations that cannot be resolved, or
    declares any other payload type (or a payload class whose fields wireframe cannot hold).
    """
    return payload_of(fn, where=where)[0]


ANY_OBJECT = Dict(ANY)
"""The shape of an untyped payload: any JSON object."""


def payload_of(fn: Callable[..., Any], *, where: str) -> tuple[type | None, Shape]:
    """`payload_type_of`, and the shape its payloads are checked against at submit."""
    if not callable(fn):
        raise ConfigError(f"{where}: handler {fn!r} is not callable")
    if not inspect.iscoroutinefunction(fn):
        raise ConfigError(
            f"{where}: handler {_describe_callable(fn)} must be an 'async def' function"
            " taking (job, ctx)"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read the signature of handler {fn!r}: {exc}") from None
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    others_required = [
        p
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    var_positional = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    if len(positional) != 2 or others_required or var_positional:
        raise ConfigError(
            f"{where}: handler {_describe_callable(fn)} must take exactly two positional"
            " parameters (job, ctx)"
        )
    job_param = positional[0]
    if job_param.annotation is inspect.Parameter.empty:
        return None, ANY_OBJECT
    try:
        hint = typing.get_type_hints(fn).get(job_param.name, inspect.Parameter.empty)
    except Exception:
        # Another annotation (say ``ctx``'s) may be what fails: resolve the payload's alone.
        hint = _resolve_annotation(fn, job_param.annotation, where=where)
    if hint is inspect.Parameter.empty or hint is Any:
        return None, ANY_OBJECT
    origin = typing.get_origin(hint)
    cls = hint if isinstance(hint, type) and origin is None else origin
    if isinstance(cls, type) and (attrs.has(cls) or dataclasses.is_dataclass(cls)):
        try:
            return cls, object_shape(cls)
        except ConfigError as exc:
            raise ConfigError(f"{where}: handler {_describe_callable(fn)}: {exc}") from None
    if hint in _MAPPING_TYPES or origin in _MAPPING_TYPES:
        args = typing.get_args(hint)
        if not args or args[0] in (str, Any):
            shape = shape_of(hint, where=f"{where}: payload {_type_text(hint)}")
            return dict, shape
    raise ConfigError(
        f"{where}: handler {_describe_callable(fn)}: parameter {job_param.name!r} is annotated"
        f" {_type_text(hint)}; the payload type must be an attrs class, a dataclass or"
        " dict[str, Any]"
    )


# --------------------------------------------------------------------------- encoding


class _Unserialisable(Exception):
    """Internal: a value cannot become JSON; ``path`` grows as the error propagates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


_SCALARS = frozenset({str, int, bool, type(None)})
_FieldNames = tuple[tuple[str, str], ...]
_field_cache: dict[type, _FieldNames] = {}


def _init_fields(cls: type) -> _FieldNames:
    """``(attribute name, __init__ argument name)`` of an attrs class's ``init`` fields."""
    try:
        return _field_cache[cls]
    except KeyError:
        pass
    names = tuple((attr, key) for attr, key, *_ in init_fields(cls))
    _field_cache[cls] = names
    return names


def _convert(value: object, active: set[int]) -> object:
    """Turn ``value`` into plain JSON data, or raise ``_Unserialisable``."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _Unserialisable(f"float {value!r} is not JSON-serialisable")
        return value
    if isinstance(value, enum.Enum):
        try:
            return _convert(value.value, active)
        except _Unserialisable as exc:
            exc.path.append(".value")
            raise
    if isinstance(value, str):  # subclasses of the JSON scalars become the plain type
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _convert(float(value), active)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    ident = id(value)
    if ident in active:
        raise _Unserialisable("circular reference")
    fields = _field_cache.get(kind)
    if fields is not None or attrs.has(kind):
        return _convert_fields(value, fields or _init_fields(kind), active)
    if isinstance(value, Mapping):
        active.add(ident)
        try:
            mapping: dict[str, object] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _Unserialisable(
                        f"dict key {key!r} ({type(key).__name__}) is not a string"
                    )
                try:
                    mapping[key] = _convert(item, active)
                except _Unserialisable as exc:
                    exc.path.append(f"[{key!r}]")
                    raise
            return mapping
        finally:
            active.discard(ident)
    if isinstance(value, set | frozenset):
        active.add(ident)
        try:
            converted = []
            for item in value:
                try:
                    converted.append(_convert(item, active))
                except _Unserialisable as exc:
                    exc.path.append(f"[{item!r}]")
                    raise
        finally:
            active.discard(ident)
        # A set has no order: its list is sorted by each item's JSON text (canonical).
        return sorted(converted, key=_CANONICAL.encode)
    if isinstance(value, list | tuple):
        active.add(ident)
        try:
            items: list[object] = []
            for index, item in enumerate(value):
                try:
                    items.append(_convert(item, active))
                except _Unserialisable as exc:
                    exc.path.append(f"[{index}]")
                    raise
            return items
        finally:
            active.discard(ident)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise _Unserialisable(f"Decimal {value!r} is not finite")
        return str(value)
    if dataclasses.is_dataclass(kind):
        return _convert_fields(value, _init_fields(kind), active)
    raise _Unserialisable(f"object of type {kind.__qualname__} is not JSON-serialisable")


def _convert_fields(value: object, fields: _FieldNames, active: set[int]) -> dict[str, object]:
    """An attrs or dataclass instance as the dict of its ``__init__`` fields."""
    ident = id(value)
    active.add(ident)
    try:
        data: dict[str, object] = {}
        for name, key in fields:
            try:
                data[key] = _convert(getattr(value, name), active)
            except _Unserialisable as exc:
                exc.path.append(f".{key}")
                raise
        return data
    finally:
        active.discard(ident)


def to_jsonable(value: object, *, where: str, root: str = "value") -> object:
    """Convert ``value`` to plain JSON data (see the module docstring for the rules).

    Raises ``PayloadError`` naming ``where`` and the path of the bad part, e.g.
    ``payload.items[2].when: object of type set is not JSON-serialisable``.
    """
    try:
        return _convert(value, set())
    except _Unserialisable as exc:
        path = root + "".join(reversed(exc.path))
        raise PayloadError(f"{where}: {path}: {exc.reason}") from None


use_default_encoder(lambda value: to_jsonable(value, where="default"))


_encode_str = json.encoder.encode_basestring_ascii
"""How `_CANONICAL` writes a string (`ensure_ascii`)."""

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
"""One encoder for every call: `json.dumps` with options builds a new one each time."""


def canonical_json(value: object) -> str:
    """Compact JSON with sorted keys and no NaN/Infinity; ``PayloadError`` if impossible."""
    try:
        return _CANONICAL.encode(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"cannot encode {type(value).__name__} as JSON: {exc}") from None


def _type_name(cls: type | None) -> str:
    """Readable name of a payload type for messages."""
    return "dict" if cls is None else cls.__qualname__


_flat_cache: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _flat_fields(cls: type) -> tuple[tuple[str, str], ...] | None:
    """(attribute, JSON key) pairs if every field of ``cls`` holds a plain scalar, else None
    (such a payload decodes as ``cls(**data)``: nothing to convert)."""
    try:
        return _flat_cache[cls]
    except KeyError:
        pass
    hints = _field_hints(cls)
    flat: tuple[tuple[str, str], ...] | None = None
    scalar_hints = {str, int, bool, type(None)}
    if all(
        hint in scalar_hints
        or (
            typing.get_origin(hint) in (typing.Union, types.UnionType)
            and all(arg in scalar_hints for arg in typing.get_args(hint))
        )
        for hint in hints.values()
    ):
        fields = _init_fields(cls)
        if all(attr == key for attr, key in fields) and len(fields) == len(hints):
            flat = fields
    _flat_cache[cls] = flat
    return flat


_json_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)


def _encode_flat(
    payload: object, fields: tuple[tuple[str, str, tuple[type, ...]], ...]
) -> str | None:
    """Canonical JSON of a flat payload, or None if a value is not of its field's exact type.

    Written out by hand, field by field in sorted key order, exactly as `canonical_json` would
    write it (the submit hot path; a test holds the two to the same text). Each value's class
    must be one its field allows exactly: anything else (a wrong type, a subclass) takes the
    checked path, which says what is wrong. `fields` is `ObjectShape.flat`.
    """
    parts = []
    for attr, key, kinds in fields:
        value = getattr(payload, attr)
        kind = value.__class__
        if kind not in kinds:
            return None
        if kind is str:
            parts.append(key + _json_str(value))
        elif kind is int:
            parts.append(key + int.__repr__(value))
        elif kind is bool:
            parts.append(key + ("true" if value else "false"))
        else:
            parts.append(key + "null")
    return "{" + ",".join(parts) + "}"


def check_payload(payload: object, shape: Shape, *, where: str, lenient: bool = False) -> None:
    """Raise ``PayloadError`` naming `where`, the field's path and the bad value unless
    `payload` fits `shape` (`lenient`: JSON forms are accepted too, as in a dict payload)."""
    try:
        shape.check(payload, lenient)
    except Mismatch as exc:
        raise PayloadError(f"{where}: {exc.at('payload')}") from None


def encode_payload(
    payload: object, *, expected: type | None, where: str, shape: Shape | None = None
) -> str:
    """Check a job payload's field types and serialise it to canonical JSON text.

    ``expected`` is the handler's payload type (from ``payload_type_of``): an attrs class or
    dataclass requires an instance of it, or a mapping of its fields; ``dict`` or ``None``
    require a mapping with string keys (or, for ``None``, any attrs or dataclass instance).
    ``shape`` is what the fields are checked against (by default, the class's). Raises
    ``PayloadError`` naming ``where``, the bad field's path and its value.
    """
    if expected is not None and expected is not dict:
        if shape is None:
            shape = object_shape(expected)
        if payload.__class__ is expected:  # the common case, without an ABC check
            flat = shape.flat if isinstance(shape, ObjectShape) else None
            if flat is not None:
                text = _encode_flat(payload, flat)
                if text is not None:
                    return text
            check_payload(payload, shape, where=where)
        elif isinstance(payload, Mapping) and not isinstance(payload, expected):
            check_payload(payload, shape, where=where, lenient=True)
            data = to_jsonable(payload, where=where, root="payload")
            assert isinstance(data, dict)
            try:
                _build(expected, data)
            except Exception as exc:
                raise PayloadError(
                    f"{where}: the dict payload does not fit {_type_name(expected)}:"
                    f" {type(exc).__name__}: {exc}"
                ) from None
            return canonical_json(data)
        elif not isinstance(payload, expected):
            raise PayloadError(
                f"{where}: expected a payload of type {_type_name(expected)} (or a dict of its"
                f" fields), got {type(payload).__qualname__}: {payload!r:.200}"
            )
        else:
            check_payload(payload, shape, where=where)
    elif isinstance(payload, Mapping):
        if shape is not None:
            check_payload(payload, shape, where=where, lenient=True)
    elif not (expected is None and _is_payload_class(type(payload))):
        wanted = "a dict" if expected is dict else "an attrs or dataclass instance or a dict"
        raise PayloadError(
            f"{where}: expected {wanted} as the payload, got {type(payload).__qualname__}:"
            f" {payload!r:.200}"
        )
    return canonical_json(to_jsonable(payload, where=where, root="payload"))


def _is_payload_class(cls: type) -> bool:
    """An attrs class or a dataclass."""
    return attrs.has(cls) or dataclasses.is_dataclass(cls)


def encode_result(value: object, *, where: str | Callable[[], str]) -> str:
    """Serialise a handler's return value to canonical JSON text (``None`` is ``"null"``).

    ``where`` names the value in an error; a callable is only called to write one.
    """
    if value is None:
        return "null"
    kind = type(value)
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return float.__repr__(value)  # what the encoder writes
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return _encode_str(value)  # type: ignore[arg-type]
    if kind is bool:
        return "true" if value else "false"
    try:
        data = _convert(value, set())
    except _Unserialisable as exc:
        place = where if isinstance(where, str) else where()
        raise PayloadError(f"{place}: result{''.join(reversed(exc.path))}: {exc.reason}") from None
    return canonical_json(data)


def decode_result(text: str | None, hint: object = None, *, where: str = "result") -> object:
    """Parse a stored result (``None`` or ``"null"`` give ``None``), converted into the type
    ``hint`` describes when one is given (see `decode_value`)."""
    if text is None:
        return None
    value = json.loads(text)
    return value if hint is None else decode_value(value, hint, where=where)


def decode_value(value: object, hint: object, *, where: str) -> object:
    """Convert parsed JSON ``value`` back into the type ``hint`` describes: attrs classes (and
    what their fields hold), lists, tuples, dicts, ``X | None``, enums, datetimes, UUIDs; a
    value the hint says nothing more about comes back as it is. Raises ``PayloadError``
    naming ``where`` if the value does not fit."""
    if hint is None or hint is Any:
        return value
    try:
        return _revive(hint, value)
    except Exception as exc:
        raise PayloadError(
            f"{where}: cannot decode {value!r:.200} as {_type_text(hint)}:"
            f" {type(exc).__name__}: {exc}"
        ) from exc


def result_type_of(fn: object) -> object:
    """What calling ``fn`` returns, as far as its annotations tell (``None``: nothing known).

    A class gives itself; a function (or a method, or a ``functools.partial`` of one) its
    resolved return annotation (``type(None)`` for ``-> None``); anything whose annotations
    are missing or cannot be resolved, ``None``.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type):
        return fn
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    return None if hint is Any else hint


# --------------------------------------------------------------------------- decoding

_hint_cache: dict[type, dict[str, object]] = {}


def _field_hints(cls: type) -> dict[str, object]:
    """``__init__`` argument name -> resolved annotation (or ``None``) of an attrs class or
    dataclass."""
    try:
        return _hint_cache[cls]
    except KeyError:
        pass
    try:
        resolved = typing.get_type_hints(cls)
    except Exception:
        resolved = {}
    hints: dict[str, object] = {}
    for attr, key, annotation, *_ in init_fields(cls):
        hint = resolved.get(attr, annotation)
        hints[key] = None if isinstance(hint, str) else hint
    _hint_cache[cls] = hints
    return hints


_SEQUENCE_ORIGINS: tuple[object, ...] = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    typing.List,  # noqa: UP006 - the old spelling is a valid annotation too
    typing.Sequence,
)
_SET_ORIGINS: dict[object, type] = {
    set: set,
    frozenset: frozenset,
    collections.abc.Set: frozenset,
    collections.abc.MutableSet: set,
    typing.Set: set,  # noqa: UP006
    typing.FrozenSet: frozenset,  # noqa: UP006
    typing.AbstractSet: frozenset,
}


def _revive(hint: object, value: object) -> object:
    """Convert JSON data back to the type ``hint`` describes, as far as it is known."""
    if value is None:
        return None
    if hint is None or hint is Any:
        return value
    if isinstance(hint, type):
        if _is_payload_class(hint) and isinstance(value, dict):
            return _build(hint, value)
        if issubclass(hint, enum.Enum):
            return hint(value)
        if hint is dt.datetime and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if hint is dt.date and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if hint is dt.time and isinstance(value, str):
            return dt.time.fromisoformat(value)
        if hint is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
        if hint is decimal.Decimal and isinstance(value, str | int | float):
            return decimal.Decimal(repr(value) if isinstance(value, float) else value)
        if hint in _SET_ORIGINS and isinstance(value, list):
            return _SET_ORIGINS[hint](value)
        if hint is tuple and isinstance(value, list):
            return tuple(value)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:
            return _revive(options[0], value)
        return _revive(_option_for(tuple(options), value), value)
    if origin is typing.Annotated:
        return _revive(args[0], value)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_revive(args[0], item) for item in value)
        if args and len(args) == len(value):
            return tuple(_revive(arg, item) for arg, item in zip(args, value, strict=True))
        return tuple(value)
    if origin in _SEQUENCE_ORIGINS and isinstance(value, list):
        item_hint = args[0] if args else None
        return [_revive(item_hint, item) for item in value]
    if origin in _SET_ORIGINS and isinstance(value, list):
        item_hint = args[0] if args else None
        return _SET_ORIGINS[origin](_revive(item_hint, item) for item in value)
    if isinstance(origin, type) and _is_payload_class(origin) and isinstance(value, dict):
        return _build(origin, value)
    if origin in _MAPPING_TYPES and isinstance(value, dict):
        item_hint = args[1] if len(args) == 2 else None
        return {key: _revive(item_hint, item) for key, item in value.items()}
    return value


def _option_for(options: tuple[object, ...], value: object) -> object:
    """The first option of a union that `value` fits as it is (an int for ``int``), else the
    first whose JSON form it is (a string for ``Decimal``); None if none."""
    for lenient in (False, True):
        for option in options:
            try:
                shape = _option_shapes[option]
            except KeyError:
                try:
                    shape = shape_of(option, where="decode")
                except (ConfigError, TypeError):
                    shape = None
                _option_shapes[option] = shape
            if shape is None:
                continue
            try:
                shape.check(value, lenient)
            except Mismatch:
                continue
            return option
    return None


_option_shapes: dict[object, Shape | None] = {}


def _build(cls: type, data: dict[str, Any]) -> object:
    """Make an instance of the attrs class or dataclass ``cls`` from its JSON dict."""
    hints = _field_hints(cls)
    kwargs = {key: _revive(hints.get(key), value) for key, value in data.items()}
    return cls(**kwargs)


_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse_json(text: str) -> Any:
    """`json.loads(text)`, five times faster for the compact JSON the store holds.

    The C scanner under `json.loads` is called directly; text with surrounding whitespace, or
    that is not valid, takes `json.loads` itself (and gets its error).
    """
    try:
        value, end = _scan_json(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError, TypeError):
        pass
    return json.loads(text)


def decode_payload(text: str, cls: type | None) -> object:
    """Parse payload JSON into an instance of the attrs class ``cls`` (or a dict).

    Raises ``PayloadError`` if the text is not a JSON object or does not fit ``cls``.
    """
    try:
        data = parse_json(text)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(data).__name__}")
    if cls is None or cls is dict:
        return data
    try:
        if _flat_fields(cls) is not None:
            return cls(**data)
        return _build(cls, data)
    except Exception as exc:
        raise PayloadError(
            f"cannot decode the payload as {_type_name(cls)}: {type(exc).__name__}: {exc}"
        ) from exc
