"""Payload/result serialisation, handler signature checks and job type names."""

from __future__ import annotations

import datetime as dt
import enum
import json
import typing
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireframe.scheduler.codec import (
    canonical_json,
    decode_payload,
    decode_result,
    encode_payload,
    encode_result,
    job_type_name,
    parse_json,
    payload_type_of,
    to_jsonable,
    validate_name,
)
from wireframe.scheduler.errors import ConfigError, PayloadError

if TYPE_CHECKING:
    from wireframe.scheduler.context import JobContext  # only for type checkers

T = TypeVar("T")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    x: int
    y: float = 0.0


@attrs.frozen
class Item:
    name: str
    when: object = None


@attrs.frozen
class Order:
    id: uuid.UUID
    placed: dt.datetime
    points: list[Point]
    path: tuple[Point, ...]
    pair: tuple[int, str]
    by_name: dict[str, Point]
    colour: Colour
    level: Level
    origin: Point | None = None
    day: dt.date | None = None
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Basket:
    items: list[Item]


@attrs.define
class Private:
    _secret: str
    derived: int = attrs.field(init=False, default=7)


@attrs.frozen
class Box(Generic[T]):
    value: int


class Plain:
    pass


def order() -> Order:
    return Order(
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        placed=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        points=[Point(1, 2.5), Point(3)],
        path=(Point(0),),
        pair=(1, "a"),
        by_name={"home": Point(5, 6.0)},
        colour=Colour.BLUE,
        level=Level.HIGH,
        origin=Point(-1, -1.0),
        day=dt.date(2024, 5, 2),
    )


# --------------------------------------------------------------------------- names


def test_job_type_name() -> None:
    assert job_type_name("media", "resize") == "media::resize"
    assert job_type_name("a.b-c_1", "X9") == "a.b-c_1::X9"


@pytest.mark.parametrize("name", ["", "a::b", "a b", "tâche", "a/b", "a:b", "x\n"])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="job name"):
        job_type_name("media", name)
    with pytest.raises(ConfigError, match="domain name"):
        validate_name(name, what="domain name")


def test_non_string_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"domain name 3 must be a string, not int"):
        validate_name(3, what="domain name")
    assert validate_name("ok", what="x") == "ok"


# --------------------------------------------------------------------------- handlers


async def takes_point(job: Point, ctx: JobContext) -> None: ...


async def takes_dict(job: dict, ctx: object) -> None: ...  # type: ignore[type-arg]


async def takes_str_dict(job: dict[str, Any], ctx: object) -> None: ...


async def takes_mapping(job: Mapping[str, int], ctx: object) -> None: ...


async def takes_typing_dict(job: typing.Dict[str, Any], ctx: object) -> None: ...  # noqa: UP006


async def takes_anything(job, ctx):  # type: ignore[no-untyped-def]
    ...


async def takes_any(job: Any, ctx: object) -> None: ...


async def takes_box(job: Box[int], ctx: object) -> None: ...


async def kw_only_default(job: Point, ctx: object, *, extra: int = 1, **more: object) -> None: ...


async def positional_only(job: Point, ctx: object, /) -> None: ...


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (takes_point, Point),
        (takes_dict, dict),
        (takes_str_dict, dict),
        (takes_mapping, dict),
        (takes_typing_dict, dict),
        (takes_anything, None),
        (takes_any, None),
        (takes_box, Box),
        (kw_only_default, Point),
        (positional_only, Point),
    ],
)
def test_payload_type_of(fn: Any, expected: type | None) -> None:
    # takes_point's ctx annotation cannot be resolved at runtime (TYPE_CHECKING import):
    # the payload annotation alone is still resolved.
    assert payload_type_of(fn, where="media.job") is expected


def test_payload_type_of_a_bound_method() -> None:
    class Resize:
        async def execute(self, job: Point, ctx: object) -> None: ...

    assert payload_type_of(Resize().execute, where="Resize.execute") is Point


async def takes_int(job: int, ctx: object) -> None: ...


async def takes_plain(job: Plain, ctx: object) -> None: ...


async def takes_int_keys(job: dict[int, str], ctx: object) -> None: ...


async def takes_list(job: list[Point], ctx: object) -> None: ...


async def takes_optional(job: Point | None, ctx: object) -> None: ...


@pytest.mark.parametrize(
    ("fn", "shown"),
    [
        (takes_int, "int"),
        (takes_plain, "Plain"),
        (takes_int_keys, "dict[int, str]"),
        (takes_list, "list[tests.scheduler.test_codec.Point]"),
        (takes_optional, "Point | None"),
    ],
)
def test_unsupported_payload_types_name_handler_parameter_and_type(fn: Any, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        payload_type_of(fn, where="media.job")
    message = str(info.value)
    assert message.startswith(f"media.job: handler {fn.__qualname__}(")
    assert "parameter 'job' is annotated" in message
    assert shown.split("[")[0] in message.replace("typing.", "")
    assert "attrs class, a dataclass or dict" in message


def sync_handler(job: Point, ctx: object) -> None: ...


async def one_param(job: Point) -> None: ...


async def three_params(job: Point, ctx: object, more: int) -> None: ...


async def var_args(job: Point, *args: object) -> None: ...


async def required_kw(job: Point, ctx: object, *, flag: bool) -> None: ...


@pytest.mark.parametrize(
    ("fn", "problem"),
    [
        (sync_handler, "must be an 'async def' function taking (job, ctx)"),
        (one_param, "must take exactly two positional parameters (job, ctx)"),
        (three_params, "must take exactly two positional parameters"),
        (var_args, "must take exactly two positional parameters"),
        (required_kw, "must take exactly two positional parameters"),
    ],
)
def test_bad_handler_signatures_name_the_function_and_signature(fn: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        payload_type_of(fn, where="math::add")
    message = str(info.value)
    assert message.startswith(f"math::add: handler {fn.__qualname__}(job: Point")
    assert problem in message


def test_non_callables_are_rejected() -> None:
    with pytest.raises(ConfigError, match="not callable"):
        payload_type_of(42, where="x")  # type: ignore[arg-type]


def test_unresolvable_payload_annotation_is_a_config_error() -> None:
    async def handler(job: NotDefinedAnywhere, ctx: object) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ConfigError) as info:
        payload_type_of(handler, where="media::x")
    message = str(info.value)
    assert "cannot resolve the payload annotation 'NotDefinedAnywhere'" in message
    assert "handler test_unresolvable_payload_annotation_is_a_config_error.<locals>.handler(" in (
        message
    )
    assert "NameError" in message


# --------------------------------------------------------------------------- encoding


def test_encode_attrs_payload_is_canonical_json() -> None:
    text = encode_payload(Point(2, 1.5), expected=Point, where="submit")
    assert text == '{"x":2,"y":1.5}'
    assert encode_payload(Point(2, 1.5), expected=None, where="submit") == text


def test_encode_converts_nested_values() -> None:
    data = json.loads(encode_payload(order(), expected=Order, where="submit"))
    assert data == {
        "id": "12345678-1234-5678-1234-567812345678",
        "placed": "2024-05-01T12:30:00+00:00",
        "points": [{"x": 1, "y": 2.5}, {"x": 3, "y": 0.0}],
        "path": [{"x": 0, "y": 0.0}],
        "pair": [1, "a"],
        "by_name": {"home": {"x": 5, "y": 6.0}},
        "colour": "blue",
        "level": 2,
        "origin": {"x": -1, "y": -1.0},
        "day": "2024-05-02",
        "tags": [],
    }


def test_encode_dict_payload() -> None:
    assert encode_payload({"b": [1, (2, 3)], "a": None}, expected=dict, where="s") == (
        '{"a":null,"b":[1,[2,3]]}'
    )
    assert encode_payload({"k": Point(1)}, expected=None, where="s") == '{"k":{"x":1,"y":0.0}}'


def test_dict_payload_for_an_attrs_type_must_fit_it() -> None:
    assert encode_payload({"x": 1}, expected=Point, where="s") == '{"x":1}'
    assert decode_payload('{"x":1}', Point) == Point(1)
    with pytest.raises(PayloadError, match=r"^s: payload.z: unexpected field: Point has x, y$"):
        encode_payload({"z": 1}, expected=Point, where="s")
    with pytest.raises(PayloadError, match=r"^s: payload.x: expected int, got \{1, 2\} \(set\)$"):
        encode_payload({"x": {1, 2}}, expected=Point, where="s")


def test_wrong_payload_type_names_expected_and_actual() -> None:
    with pytest.raises(PayloadError) as info:
        encode_payload(Item("a"), expected=Point, where="submit to media::resize")
    message = str(info.value)
    assert message.startswith("submit to media::resize: expected a payload of type Point")
    assert "got Item" in message
    with pytest.raises(PayloadError, match=r"expected a dict as the payload, got Point"):
        encode_payload(Point(1), expected=dict, where="s")
    with pytest.raises(
        PayloadError, match=r"expected an attrs or dataclass instance or a dict .* got list"
    ):
        encode_payload([1, 2], expected=None, where="s")
    with pytest.raises(PayloadError, match=r"got int"):
        encode_payload(5, expected=Point, where="s")


def test_unserialisable_value_names_its_path() -> None:
    basket = Basket([Item("a"), Item("b"), Item("c", when=b"raw")])
    with pytest.raises(PayloadError) as info:
        encode_payload(basket, expected=Basket, where="submit")
    assert str(info.value) == (
        "submit: payload.items[2].when: object of type bytes is not JSON-serialisable"
    )


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        ({"a": float("nan")}, "payload['a']", "float nan is not JSON-serialisable"),
        ({"a": [1, float("inf")]}, "payload['a'][1]", "float inf is not JSON-serialisable"),
        ({"a": {1: "x"}}, "payload['a']", "dict key 1 (int) is not a string"),
        ({"a": b"raw"}, "payload['a']", "object of type bytes is not JSON-serialisable"),
        ({"a": Item("x", when=object())}, "payload['a'].when", "object of type object"),
        ({"a": dt.timedelta(1)}, "payload['a']", "object of type timedelta"),
    ],
)
def test_unserialisable_values(payload: dict[str, object], path: str, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        encode_payload(payload, expected=None, where="w")
    assert str(info.value).startswith(f"w: {path}: {reason}")


def test_circular_references_are_reported() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(PayloadError, match=r"payload\['l'\]\[0\]: circular reference"):
        encode_payload({"l": loop}, expected=None, where="w")
    shared = [1]
    assert encode_payload({"a": shared, "b": shared}, expected=None, where="w") == (
        '{"a":[1],"b":[1]}'
    )


def test_private_and_non_init_fields() -> None:
    text = encode_payload(Private("s3cret"), expected=Private, where="w")
    assert text == '{"secret":"s3cret"}'
    assert decode_payload(text, Private) == Private("s3cret")


def test_str_and_int_subclasses_become_plain() -> None:
    class Name(str):
        pass

    assert to_jsonable({"n": Name("x"), "b": True, "l": Level.LOW}, where="w") == {
        "n": "x",
        "b": True,
        "l": 1,
    }
    assert type(to_jsonable(Name("x"), where="w")) is str


# --------------------------------------------------------------------------- decoding


def test_decode_revives_nested_types() -> None:
    original = order()
    text = encode_payload(original, expected=Order, where="w")
    decoded = decode_payload(text, Order)
    assert decoded == original
    assert isinstance(decoded, Order)
    assert isinstance(decoded.points[0], Point)
    assert isinstance(decoded.path, tuple)
    assert decoded.colour is Colour.BLUE


def test_decode_int_into_float_field() -> None:
    decoded = decode_payload('{"x":1,"y":2}', Point)
    assert decoded == Point(1, 2.0)
    assert type(decoded.y) is float


def test_decode_dict_or_untyped() -> None:
    assert decode_payload('{"a":[1,2]}', None) == {"a": [1, 2]}
    assert decode_payload('{"a":1}', dict) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "cls", "pattern"),
    [
        ("not json", None, r"payload is not valid JSON"),
        ("[1,2]", None, r"payload must be a JSON object, got list"),
        ('{"x":1,"z":2}', Point, r"cannot decode the payload as Point: TypeError"),
        ("{}", Point, r"cannot decode the payload as Point: TypeError"),
        ('{"colour":"green"}', Order, r"cannot decode the payload as Order"),
    ],
)
def test_decode_errors(text: str, cls: type | None, pattern: str) -> None:
    with pytest.raises(PayloadError, match=pattern):
        decode_payload(text, cls)


@given(
    st.one_of(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text() | st.floats(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        ).map(lambda value: json.dumps(value, separators=(",", ":"))),
        st.text(),  # mostly not JSON at all
        st.sampled_from(['{"a":1} ', ' {"a":1}', '{"a":1}x', "{", "", "NaN", "[1,2]", "1 2"]),
    )
)
def test_parse_json_agrees_with_json_loads(text: str) -> None:
    """The fast path gives what json.loads gives, or raises the same error."""
    try:
        expected: object = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)) as caught:
            parse_json(text)
        assert str(caught.value) == str(exc)
        return
    got = parse_json(text)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compare the text


def test_decode_payload_accepts_json_with_whitespace() -> None:
    assert decode_payload(' { "x" : 1 , "y" : 2 } \n', Point) == Point(1, 2.0)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
points = st.builds(
    Point,
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
orders = st.builds(
    Order,
    id=st.uuids(),
    placed=st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    points=st.lists(points, max_size=3),
    path=st.lists(points, max_size=3).map(tuple),
    pair=st.tuples(st.integers(), st.text()),
    by_name=st.dictionaries(st.text(), points, max_size=3),
    colour=st.sampled_from(Colour),
    level=st.sampled_from(Level),
    origin=st.none() | points,
    day=st.none() | st.dates(),
    tags=st.lists(st.text(), max_size=3),
)


@given(orders)
def test_attrs_payload_round_trip(value: Order) -> None:
    text = encode_payload(value, expected=Order, where="w")
    assert decode_payload(text, Order) == value
    assert encode_payload(decode_payload(text, Order), expected=Order, where="w") == text


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_dict_payload_round_trip(value: dict[str, object]) -> None:
    text = encode_payload(value, expected=None, where="w")
    assert decode_payload(text, None) == value
    assert text == canonical_json(json.loads(text))


@given(json_values)
def test_result_round_trip(value: object) -> None:
    assert decode_result(encode_result(value, where="r")) == value


@given(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
def test_a_scalar_result_is_written_as_the_canonical_encoder_writes_it(value: object) -> None:
    assert encode_result(value, where="r") == canonical_json(value)


# --------------------------------------------------------------------------- results


def test_results() -> None:
    assert encode_result(None, where="r") == "null"
    assert decode_result("null") is None
    assert decode_result(None) is None
    assert encode_result(Point(1), where="r") == '{"x":1,"y":0.0}'
    assert encode_result([1, "a", (2,)], where="r") == '[1,"a",[2]]'
    assert encode_result(3.5, where="r") == "3.5"
    assert encode_result(-0.0, where="r") == "-0.0"
    assert encode_result(10**30, where="r") == "1000000000000000000000000000000"
    assert encode_result("é\n", where="r") == '"\\u00e9\\n"'
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(PayloadError, match=r"result: float .* is not JSON-serialisable"):
            encode_result(bad, where="r")
    with pytest.raises(PayloadError) as info:
        encode_result({"ok": b"1"}, where="result of job 7 (math::add)")
    assert str(info.value) == (
        "result of job 7 (math::add): result['ok']: object of type bytes is not JSON-serialisable"
    )


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, "é"]}) == '{"a":[1.5,null,"\\u00e9"],"b":1}'
    with pytest.raises(PayloadError, match="cannot encode float"):
        canonical_json(float("nan"))
    with pytest.raises(PayloadError, match="cannot encode set"):
        canonical_json({1})


@attrs.frozen
class _Flat:
    zeta: str
    alpha: int
    mid: float | None
    flag: bool
    b_2: str | None = None


def test_flat_payloads_encode_exactly_as_canonical_json() -> None:
    """The hand-written fast path for flat attrs payloads matches `canonical_json` text."""
    from hypothesis import given
    from hypothesis import strategies as st

    from wireframe.scheduler.codec import canonical_json, encode_payload

    @given(
        st.text(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.none() | st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none() | st.text(),
    )
    def check(zeta: str, alpha: int, mid: float | None, flag: bool, b_2: str | None) -> None:
        payload = _Flat(zeta, alpha, mid, flag, b_2)
        text = encode_payload(payload, expected=_Flat, where="test")
        assert text == canonical_json(attrs.asdict(payload))

    check()


def test_flat_payload_with_a_non_finite_float_is_rejected_by_name() -> None:
    from wireframe.scheduler.codec import PayloadError, encode_payload

    with pytest.raises(PayloadError, match="mid"):
        encode_payload(_Flat("z", 1, float("nan"), True), expected=_Flat, where="submit t")


@attrs.frozen
class _FlatKeys:
    a: int
    a0: int
    a_b: str | None
    é: bool


def test_flat_payload_keys_sort_as_canonical_json_sorts_them() -> None:
    payload = _FlatKeys(1, 2, None, True)
    assert encode_payload(payload, expected=_FlatKeys, where="t") == canonical_json(
        attrs.asdict(payload)
    )
