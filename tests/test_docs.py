"""The docs are part of the code: the map, the component READMEs and the README's
commands stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = sorted(p for p in (ROOT / "bot").iterdir() if p.is_dir() and p.name[0] not in "_.")


def test_every_path_agents_md_names_exists() -> None:
    text = (ROOT / "AGENTS.md").read_text()
    tops = r"(?:bot|infra|capabilities|schemas|runbooks|docs|tests|scripts|\.ci)"
    paths = set(re.findall(rf"`({tops}(?:/[\w./-]*)?)(?:::\w+)?`", text))
    assert paths
    missing = [p for p in paths if not (ROOT / p.split("::")[0]).exists()]
    assert missing == []


def test_agents_md_maps_every_component() -> None:
    text = (ROOT / "AGENTS.md").read_text()
    assert [c.name for c in COMPONENTS if f"`bot/{c.name}/`" not in text] == []


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda p: p.name)
def test_every_component_has_a_readme_with_the_four_parts(component: Path) -> None:
    readme = (component / "README.md").read_text()
    for heading in ("Interface", "Dependencies", "Failure modes"):
        assert re.search(rf"^##+ .*{heading}", readme, re.M | re.I), heading
    assert len(readme.splitlines()[2].strip()) > 20  # a purpose line under the title


def test_the_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    first = [ln for ln in readme.splitlines() if ln.startswith(("./", ".venv/"))][:2]
    assert first[0].startswith("./scripts/setup && .venv/bin/infrabot demo")
    assert first[1].startswith(".venv/bin/python -m pytest")
    assert (ROOT / "scripts/setup").exists()
    ci = (ROOT / ".ci/run").read_text()
    assert "./scripts/setup" in ci and ".venv/bin/python -m pytest" in ci
    parser = build_parser()
    for line in re.findall(r"^infrabot ([a-z].*?)(?:\s+#.*)?$", readme, re.M):
        words = [w for w in re.findall(r"'[^']*'|\"[^\"]*\"|\S+", line) if w != "\\"]
        parser.parse_args([w.strip("\"'") for w in words])  # SystemExit if not a command


def test_every_read_command_takes_json() -> None:
    for argv in (
        ["issue", "show", "1"],
        ["issue", "list"],
        ["pr", "list"],
        ["pr", "show", "1"],
        ["validate"],
        ["plan"],
        ["estate", "status"],
    ):
        assert build_parser().parse_args([*argv, "--json"]).json is True


def test_help_works_without_a_repository(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "demo" in done.stdout
