"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    assert lines[1] == "```bash", "the set-up commands must come right after the title"
    assert len(_readme_commands()) == 2


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    test_command = _readme_commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_demo_command_runs_examples_main_once() -> None:
    demo = _readme_commands()[0]
    assert "examples/main.py --once" in demo
