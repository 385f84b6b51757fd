"""The README stays true to the code: every setting is documented, and its commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def example_settings() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=", line):
            names.add(match.group(1))
    return names


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Settings") : text.index("## Health")]
    return {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }


def test_every_setting_in_env_example_is_in_the_readme_and_no_other() -> None:
    assert example_settings() == readme_settings()


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest -q" in readme and "\npython -m pytest -q\n" in ci


def test_the_bench_scripts_the_readme_names_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in re.findall(r"python (bench/\w+\.py)", readme):
        assert (ROOT / script).is_file(), script
