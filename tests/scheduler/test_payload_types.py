"""Payload types: field types checked at submit, dataclasses and the standard-library value types
round-tripping exactly, and the job types a scheduler records in its store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any, Literal

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wireframe.scheduler import (
    ConfigError,
    Domain,
    JobContext,
    PayloadError,
    Retry,
    Scheduler,
    Worker,
)
from wireframe.scheduler.codec import decode_payload, encode_payload
from wireframe.store import MemoryStore
from wireframe.testing import running

pytestmark = pytest.mark.anyio


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@attrs.frozen
class Line:
    n: int
    price: float = 0.0


@attrs.frozen
class Order:
    id: int
    lines: list[Line]
    size: Size = Size.SMALL
    mode: Literal["fast", "slow"] = "fast"
    note: str | None = None
    extra: dict[str, int] = attrs.field(factory=dict)


@dataclasses.dataclass(frozen=True)
class Invoice:
    amount: decimal.Decimal
    issued: dt.datetime
    due: dt.date
    ref: uuid.UUID
    codes: frozenset[str]
    seen: set[int]
    lines: tuple[Line, ...] = ()
    memo: str | None = None


def shop() -> Domain:
    domain = Domain("shop")

    @domain.job(retry=Retry.fixed(attempts=3, delay=0))
    async def order(job: Order, ctx: JobContext) -> None: ...

    return domain


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            Order(1, [Line(1), Line(2), Line("seven")]),
            "payload.lines[2].n: expected int, got 'seven' (str)",
        ),  # type: ignore[arg-type]
        (Order(True, []), "payload.id: expected int, got True (bool)"),  # type: ignore[arg-type]
        (Order(1, [], size="s"), "payload.size: expected Size (one of 's', 'l'), got 's' (str)"),  # type: ignore[arg-type]
        (Order(1, [], mode="turbo"), "payload.mode: expected Literal['fast', 'slow']"),  # type: ignore[arg-type]
        (Order(1, [], note=5), "payload.note: expected str | None, got 5 (int)"),  # type: ignore[arg-type]
        (Order(1, [], extra={"a": "1"}), "payload.extra['a']: expected int, got '1' (str)"),  # type: ignore[dict-item]
        ({"id": "1", "lines": []}, "payload.id: expected int, got '1' (str)"),
        (
            {"id": 1, "lines": [{"n": 1, "colour": "red"}]},
            "payload.lines[0].colour: unexpected field",
        ),
        ({"id": 1}, "payload.lines: missing: a required field of Order"),
        ({"id": 1, "lines": [], "size": "medium"}, "payload.size: expected Size"),
    ],
)
async def test_a_payload_field_of_the_wrong_type_is_refused_at_submit_naming_it(
    payload: object, message: str
) -> None:
    async with Scheduler("memory://", domains=[shop()], worker=False) as s:
        with pytest.raises(PayloadError) as info:
            await s.submit(payload, type="shop::order")
        assert str(info.value).startswith("submit shop::order payload: ")
        assert message in str(info.value)
        with pytest.raises(PayloadError):
            await s.submit_many([Order(1, []), payload], type="shop::order")
        assert await s.jobs() == []


async def test_payloads_that_fit_their_annotations_are_accepted() -> None:
    async with Scheduler("memory://", domains=[shop()], worker=False) as s:
        await s.submit(Order(1, [Line(1, price=2)], note="ok", extra={"a": 1}))  # int for float
        await s.submit(
            {"id": 2, "lines": [{"n": 1, "price": 2.5}], "size": "l", "mode": "slow"},
            type="shop::order",
        )
        await s.submit({"id": 3, "lines": [Line(4)]}, type="shop::order")
        assert len(await s.jobs()) == 3


@attrs.frozen
class Broken:
    when: Missing  # type: ignore[name-defined]  # noqa: F821 - the point of the test


@attrs.frozen
class Raw:
    data: bytes


async def test_an_unresolvable_or_unsupported_annotation_fails_at_definition() -> None:
    domain = Domain("d")
    with pytest.raises(ConfigError, match=r"Broken: cannot resolve its annotations: NameError"):

        @domain.job
        async def broken(job: Broken, ctx: JobContext) -> None: ...

    with pytest.raises(ConfigError, match=r"field 'data': bytes is not a type a payload can"):

        @domain.job
        async def raw(job: Raw, ctx: JobContext) -> None: ...


def invoice() -> Invoice:
    return Invoice(
        amount=decimal.Decimal("10.50"),
        issued=dt.datetime(2024, 5, 1, 12, 30, 0, 123, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        due=dt.date(2024, 6, 1),
        ref=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        codes=frozenset({"b", "a"}),
        seen={3, 1, 2},
        lines=(Line(1, 2.5),),
    )


async def test_a_dataclass_payload_reaches_its_handler_with_the_same_types_and_values() -> None:
    domain = Domain("billing")
    got: list[Invoice] = []
    done = anyio.Event()

    @domain.job
    async def bill(job: Invoice, ctx: JobContext) -> None:
        got.append(job)
        done.set()

    async with running(Scheduler("memory://", domains=[domain])) as s:
        await s.submit(invoice())
        await done.wait()
    [received] = got
    assert received == invoice()
    assert type(received.amount) is decimal.Decimal and str(received.amount) == "10.50"
    assert type(received.codes) is frozenset and type(received.seen) is set
    assert type(received.lines) is tuple and type(received.lines[0]) is Line


# A timezone that JSON text can hold exactly: a fixed offset (a zone's name becomes its offset).
offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)).map(
        lambda d: dt.timedelta(minutes=round(d.total_seconds() / 60))
    ),
)
invoices = st.builds(
    Invoice,
    amount=st.decimals(allow_nan=False, allow_infinity=False),
    issued=st.datetimes(timezones=st.none() | offsets),
    due=st.dates(),
    ref=st.uuids(),
    codes=st.frozensets(st.text(max_size=5), max_size=4),
    seen=st.sets(st.integers(), max_size=4),
    lines=st.lists(
        st.builds(Line, st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        max_size=3,
    ).map(tuple),
    memo=st.none() | st.text(max_size=5),
)


@given(invoices)
def test_dataclass_payloads_round_trip_exactly(value: Invoice) -> None:
    text = encode_payload(value, expected=Invoice, where="w")
    back = decode_payload(text, Invoice)
    assert back == value
    assert isinstance(back, Invoice)
    assert str(back.amount) == str(value.amount)  # the same digits, not only the same number
    assert back.issued.utcoffset() == value.issued.utcoffset()
    assert encode_payload(back, expected=Invoice, where="w") == text  # sets in one order


@given(invoices)
def test_the_json_form_of_a_payload_is_accepted_as_a_dict(value: Invoice) -> None:
    text = encode_payload(value, expected=Invoice, where="w")
    assert encode_payload(json.loads(text), expected=Invoice, where="w") == text


async def test_a_scheduler_records_its_job_types_when_it_opens() -> None:
    store = MemoryStore()
    async with Scheduler(store, domains=[shop()], worker=False, worker_id="api-1") as s:
        [record] = await s.store.job_types()
    assert (record.type, record.domain, record.name, record.recorded_by) == (
        "shop::order",
        "shop",
        "order",
        "api-1",
    )
    settings = json.loads(record.settings)
    assert settings["max_attempts"] == 3 and settings["priority"] == 10
    payload: dict[str, Any] = json.loads(record.payload)
    assert payload["kind"] == "object" and payload["class"].endswith("Order")
    fields = {f["name"]: f for f in payload["fields"]}
    assert fields["id"] == {"name": "id", "type": {"kind": "int"}, "required": True}
    assert fields["size"]["default"] == "s" and not fields["size"]["required"]
    assert fields["lines"]["type"]["items"]["kind"] == "object"


async def test_a_worker_records_its_job_types_when_it_starts() -> None:
    store = MemoryStore()
    worker = Worker(store, [shop()], worker_id="w-9")
    await worker.open()  # what `run` does first
    try:
        [record] = await store.job_types()
    finally:
        await store.close()
    assert (record.type, record.recorded_by) == ("shop::order", "w-9")


@attrs.frozen
class Card:
    number: str


@dataclasses.dataclass
class Transfer:
    iban: str


@attrs.frozen
class Payment:
    method: Card | Transfer
    amount: decimal.Decimal | int
    when: dt.date | None = None


@given(
    st.builds(
        Payment,
        method=st.builds(Card, st.text(max_size=5)) | st.builds(Transfer, st.text(max_size=5)),
        amount=st.integers() | st.decimals(allow_nan=False, allow_infinity=False),
        when=st.none() | st.dates(),
    )
)
def test_a_union_field_decodes_into_the_option_its_json_fits(value: Payment) -> None:
    back = decode_payload(encode_payload(value, expected=Payment, where="w"), Payment)
    assert back == value and type(back.method) is type(value.method)
    assert type(back.amount) is type(value.amount)


async def test_a_dict_payload_s_value_type_is_checked_too() -> None:
    domain = Domain("counts")

    @domain.job
    async def tally(job: dict[str, int], ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[domain], worker=False) as s:
        await s.submit({"a": 1}, type="counts::tally")
        with pytest.raises(PayloadError, match=r"payload\['b'\]: expected int, got 'x' \(str\)"):
            await s.submit({"a": 1, "b": "x"}, type="counts::tally")
