"""A process of the multi-process debounce test: submit debounced jobs with one key.

Usage: python debounce_submitter.py STORE_URL NAME COUNT. It prints "ready", waits for a line on
stdin (so the processes start together), submits COUNT debounced jobs of type d::t with key "k"
and payload {"by": NAME, "n": i}, one transaction each, then prints every result as JSON
([id, replaced] per submission) on one line.
"""

from __future__ import annotations

import json
import sys

import anyio

from wireframe.store import NewJob, Submitted, store_from_url


async def main(url: str, name: str, count: str) -> None:
    """Submit, and report what each submission returned."""
    store = store_from_url(url)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    results: list[list[object]] = []
    for n in range(int(count)):
        payload = json.dumps({"by": name, "n": n})
        job = NewJob(type="d::t", domain="d", payload=payload, key="k", debounce=3600.0)
        [result] = await store.submit([job])
        assert isinstance(result, Submitted), result
        results.append([result.id, result.replaced])
    await store.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
