"""`python -m wireframe ...`: the same as the `wireframe` command."""

from __future__ import annotations

from wireframe.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
