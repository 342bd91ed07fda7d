"""`wireframe worker --app ...` runs the app's middleware: the worker it builds from a Scheduler
or a Worker keeps the app's `middleware=[...]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe import Domain, Middleware, Scheduler, Worker
from wireframe.cli import build_parser
from wireframe.cli.running import build_worker


class Stamp(Middleware):
    pass


@pytest.mark.parametrize("kind", ["scheduler", "submit-only scheduler", "worker"])
def test_the_worker_command_keeps_the_apps_middleware(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIREFRAME_STORE", raising=False)
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    d = Domain("d")
    stamp = Stamp()
    app: Scheduler | Worker
    if kind == "worker":
        app = Worker(url, [d], middleware=[stamp])
    else:
        app = Scheduler(url, domains=[d], worker=kind == "scheduler", middleware=[stamp])
    built = build_worker(build_parser().parse_args(["worker", "--app", "x"]), app)
    assert built.middleware == (stamp,)
    assert built.require_worker().middleware == (stamp,)
