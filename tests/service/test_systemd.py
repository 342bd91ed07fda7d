"""systemd's notify protocol: a real unix datagram socket stands in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

import wireframe.service.systemd as sd
from wireframe.service import Service, ServiceConfigError
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.service.systemd import SystemdNotifier, watchdog_interval
from wireframe.service.task import TaskKind

pytestmark = pytest.mark.anyio

WAIT = 20.0  # seconds; only ever waited for in full when something is broken


class Systemd:
    """The receiving end of ``NOTIFY_SOCKET``: every datagram, in order."""

    def __init__(self, sock: anyio.abc.UNIXDatagramSocket) -> None:
        self.sock = sock
        self.seen: list[str] = []

    async def until(self, wanted: Callable[[str], bool], what: str) -> str:
        """Receive until a message ``wanted`` accepts arrives; return it."""
        with anyio.fail_after(WAIT):
            while True:
                data, _ = await self.sock.receive()
                message = data.decode()
                self.seen.append(message)
                if wanted(message):
                    return message

    def without_pings(self) -> list[str]:
        return [m for m in self.seen if m != "WATCHDOG=1"]


@asynccontextmanager
async def systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watchdog_usec: int | None = None
) -> AsyncIterator[Systemd]:
    path = tmp_path / "notify"
    async with await anyio.create_unix_datagram_socket(local_path=path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        if watchdog_usec is not None:
            monkeypatch.setenv("WATCHDOG_USEC", str(watchdog_usec))
            monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        yield Systemd(sock)


async def test_ready_status_pings_stopping_and_extend_during_a_slow_drain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., Service]
) -> None:
    monkeypatch.setattr(sd, "EXTEND_INTERVAL", 0.05)
    drained = anyio.Event()
    service = make_service(graceful_timeout=WAIT)

    @service.task()
    async def worker(stop: StopReceiver) -> None:
        await stop.wait()
        await drained.wait()  # a drain that lasts until systemd was asked for more time

    async with (
        systemd(tmp_path, monkeypatch, watchdog_usec=200_000) as sysd,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(service.run)
        await sysd.until(lambda m: m.startswith("READY=1"), "READY")
        await sysd.until(lambda m: m == "WATCHDOG=1", "a ping once ready")
        assert "systemd-notify" in [t.id for t in service.status().tasks]
        service.stop("test")
        await sysd.until(lambda m: m.startswith("STOPPING=1"), "STOPPING")
        await sysd.until(lambda m: m.startswith("EXTEND_TIMEOUT_USEC="), "EXTEND")
        drained.set()
    messages = [m for m in sysd.without_pings() if m != "STATUS=starting"]  # may be skipped
    assert messages[:3] == [
        "READY=1\nSTATUS=ready",
        "STOPPING=1\nSTATUS=stopping",
        "EXTEND_TIMEOUT_USEC=100000",
    ]
    assert sysd.seen.index("WATCHDOG=1") < sysd.seen.index("STOPPING=1\nSTATUS=stopping")


async def test_a_blocked_event_loop_sends_no_watchdog_ping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., Service]
) -> None:
    service = make_service()
    blocked = anyio.Event()

    async with systemd(tmp_path, monkeypatch, watchdog_usec=20_000) as sysd:
        path = os.environ["NOTIFY_SOCKET"]

        @service.task()
        async def hog(stop: StopReceiver) -> None:
            await blocked.wait()
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as marker:
                marker.sendto(b"BLOCK", path)
                time.sleep(0.3)  # blocks the event loop: 30 ping intervals
                marker.sendto(b"UNBLOCK", path)
            await stop.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            await sysd.until(lambda m: m.startswith("READY=1"), "READY")
            await sysd.until(lambda m: m == "WATCHDOG=1", "a ping")
            blocked.set()
            await sysd.until(lambda m: m == "UNBLOCK", "the end of the block")
            await sysd.until(lambda m: m == "WATCHDOG=1", "pings again")
            service.stop()
    during = sysd.seen[sysd.seen.index("BLOCK") : sysd.seen.index("UNBLOCK")]
    assert "WATCHDOG=1" not in during


async def test_nothing_happens_without_notify_socket(
    monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., Service]
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "20000")

    def no_socket(*args: object) -> None:
        raise AssertionError("a socket was created without NOTIFY_SOCKET")

    monkeypatch.setattr(sd.socket, "socket", no_socket)
    service = make_service()
    ids: list[str] = []

    @service.task()
    async def only(stop: StopReceiver) -> None:
        ids.extend(t.id for t in service.status().tasks)

    await service.run()
    assert ids == ["only"]


async def test_a_failed_send_warns_once_and_never_fails_the_service(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_service: Callable[..., Service],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    service = make_service()

    @service.task()
    async def main(stop: StopReceiver) -> None:
        await anyio.sleep(0.1)  # several failed pings

    with caplog.at_level(logging.WARNING, logger="wireframe.service.systemd"):
        await service.run()
    warnings = [r for r in caplog.records if r.name == "wireframe.service.systemd"]
    assert len(warnings) == 1
    assert "cannot notify systemd" in warnings[0].getMessage()


def test_watchdog_interval_from_the_environment() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": pid}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    with pytest.raises(ServiceConfigError, match=r"WATCHDOG_USEC.*'soon'"):
        watchdog_interval({"WATCHDOG_USEC": "soon"})


async def test_an_abstract_socket_name_is_reached(
    monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., Service]
) -> None:
    name = f"wireframe-test-{os.getpid()}-{id(monkeypatch)}"
    async with await anyio.create_unix_datagram_socket(local_path=b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        service = make_service()

        @service.task()
        async def once(stop: StopReceiver) -> None:
            return None

        await service.run()
        with anyio.fail_after(WAIT):
            data, _ = await sock.receive()
        assert data.startswith(b"STATUS=") or data.startswith(b"STOPPING=1")


def test_bad_notify_socket_is_named() -> None:
    with pytest.raises(ServiceConfigError, match=r"NOTIFY_SOCKET.*'relative/path'"):
        SystemdNotifier.from_env(None, 1.0, {"NOTIFY_SOCKET": "relative/path"})  # type: ignore[arg-type]


async def test_a_service_of_oneshots_still_ends_when_they_are_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., Service]
) -> None:
    service = make_service()

    @service.task(kind=TaskKind.ONESHOT)
    async def batch(stop: StopReceiver) -> None:
        return None

    async with systemd(tmp_path, monkeypatch, watchdog_usec=20_000) as sysd:
        with anyio.fail_after(WAIT):
            await service.run()  # the notifier does not keep the run alive
        await sysd.until(lambda m: m.startswith("STOPPING=1"), "STOPPING")
    assert service.status().stop_reason == StopReason(StopReasonKind.ALL_DONE)
