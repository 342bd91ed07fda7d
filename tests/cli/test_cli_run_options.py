"""`wireframe run --health-port --graceful-timeout --stop-delay`, run in-process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, run_in_process

APP = textwrap.dedent("""\
    import http.client
    import json
    from pathlib import Path

    import anyio
    import anyio.to_thread

    from wireframe import HealthServer, Service

    service = Service("app", handle_signals=False, graceful_timeout=3.0)


    def ready(port: int) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/ready")
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()


    @service.task()
    async def probe(stop):
        [health] = [t for t in service._tasks.values() if isinstance(t, HealthServer)]
        port = await health.started()
        with anyio.fail_after(5):
            while (answer := await anyio.to_thread.run_sync(ready, port))[0] != 200:
                await anyio.sleep(0.01)
        seen = {
            "host": health.host,
            "ready": answer[0],
            "graceful_timeout": service.graceful_timeout,
            "stop_delay": service.stop_delay,
        }
        Path(__file__).with_name("seen.json").write_text(json.dumps(seen))
        service.stop("probe done")
        await stop.wait()
    """)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_adds_a_health_server_and_overrides_the_timeouts(
    app: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    args = ("--health-port", "0", "--graceful-timeout", "7", "--stop-delay", "0.1s")
    args += ("--backend", backend)
    result = run_in_process(capsys, "run", f"{app}:service", *args)
    assert result.code == 0, result.err
    seen = json.loads(app.with_name("seen.json").read_text())
    assert seen == {"host": "127.0.0.1", "ready": 200, "graceful_timeout": 7.0, "stop_delay": 0.1}


def test_run_without_the_options_keeps_the_service_own_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.py"
    path.write_text(
        APP.replace('service = Service("app", ', 'service = Service("app", stop_delay=0.05, ')
        + "\nservice.add_task(HealthServer(service, port=0))\n"
    )
    assert run_in_process(capsys, "run", f"{path}:service").code == 0
    seen = json.loads(path.with_name("seen.json").read_text())
    assert (seen["graceful_timeout"], seen["stop_delay"]) == (3.0, 0.05)


def test_a_second_health_server_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.py"
    path.write_text(APP + "\nservice.add_task(HealthServer(service, port=8123))\n")
    result = run_in_process(capsys, "run", f"{path}:service", "--health-port", "0")
    assert_one_line_error(
        result, 2, "--health-port: service 'app' already has a health server", "8123"
    )
    assert not path.with_name("seen.json").exists()


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--graceful-timeout", "-1", "--graceful-timeout: invalid duration '-1'"),
        ("--graceful-timeout", "soon", "--graceful-timeout: invalid duration 'soon'"),
        ("--stop-delay", "inf", "--stop-delay: invalid duration 'inf'"),
        ("--health-port", "70000", "--health-port: HealthServer port must be an int in 0..65535"),
    ],
)
def test_bad_values_are_usage_errors(
    app: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, words: str
) -> None:
    result = run_in_process(capsys, "run", f"{app}:service", option, value)
    assert_one_line_error(result, 2, words)
    assert not app.with_name("seen.json").exists()


def test_worker_checks_its_stop_delay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ("worker", "--app", "cli_app:scheduler", "--store", store, "--stop-delay", "soon")
    result = run_in_process(capsys, *args)
    assert_one_line_error(result, 2, "--stop-delay: invalid duration 'soon'")


def test_worker_checks_its_graceful_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ("worker", "--app", "cli_app:scheduler", "--store", store, "--graceful-timeout", "-3")
    result = run_in_process(capsys, *args)
    assert_one_line_error(result, 2, "--graceful-timeout: invalid duration '-3'")
    assert not (tmp_path / "jobs.db").exists()  # refused before anything was opened
