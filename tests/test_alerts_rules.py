"""The generated rules: promtool accepts them and their unit tests pass; the tests bite;
short windows come from configuration; the monitoring role ships the current rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.alerts.catalog import require_catalog
from bot.alerts.rules import DEPLOYED_RULES, render_rules, windows
from bot.alerts.slo import Alerting, BurnTier, SloFile, prom_duration, seconds
from bot.cli import main
from bot.validate import validate_tree

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")
DEPLOYED = ROOT / "infra/ansible/roles/monitoring/files/infrabot-slo.rules.yml"
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: ./scripts/setup installs Debian's prometheus"
)


def slos() -> SloFile:
    return require_catalog(ROOT).slos


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)


def unit_test(tmp_path: Path, rules: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(ROOT / "tests/promtool/slo_rules_test.yaml", tmp_path / "test.yaml")
    return promtool("test", "rules", "test.yaml", cwd=tmp_path)


@needs_promtool
def test_promtool_checks_and_unit_tests_pass_on_the_generated_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render_rules(slos()))
    check = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 14 rules found" in check.stdout
    result = unit_test(tmp_path, render_rules(slos()))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize(
    "tiers",
    [
        (BurnTier(severity="page", burn_rate=144, long="1h", short="5m"),),  # never pages
        (BurnTier(severity="ticket", burn_rate=3, long="1d", short="2h"),),  # never pages
    ],
)
def test_the_unit_tests_fail_when_the_rules_are_wrong(tmp_path: Path, tiers: tuple) -> None:  # type: ignore[type-arg]
    wrong = slos().model_copy(update={"alerting": Alerting(tiers=tiers)})
    result = unit_test(tmp_path, render_rules(wrong))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


@needs_promtool
def test_short_windows_come_from_configuration_and_stay_valid(tmp_path: Path) -> None:
    short = slos().model_copy(update={"alerting": Alerting(window_scale=720)})
    assert windows(short.alerting) == ["417ms", "2500ms", "5s", "10s", "30s", "2m", "6m"]
    (tmp_path / "rules.yml").write_text(render_rules(short))
    check = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    # the generator's logic is the same: only the windows differ
    assert render_rules(short).count("alert: ") == render_rules(slos()).count("alert: ")


def test_the_monitoring_role_ships_the_rules_of_infra_slo_yaml() -> None:
    assert DEPLOYED.read_text() == render_rules(slos()), (
        "regenerate: infrabot slo rules --output " + str(DEPLOYED.relative_to(ROOT))
    )


def _rules_problems(tree: Path) -> list[str]:
    return [f.message for f in validate_tree(tree).findings if f.file == DEPLOYED_RULES]


def test_an_slo_change_without_its_rules_fails_validation_until_they_are_regenerated(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PR that changes an objective but not the rules would apply, and Prometheus would
    keep alerting on the old objective: validation refuses it and names the fix."""
    assert _rules_problems(repo) == []
    assert main(["-q", "slo", "rules", "--check"]) == 0
    slo = repo / "infra/slo.yaml"
    slo.write_text(slo.read_text().replace("target: 99.9%", "target: 99.5%", 1))
    [problem] = _rules_problems(repo)
    assert "is not what infra/slo.yaml generates" in problem
    assert f"infrabot slo rules --output {DEPLOYED_RULES}" in problem
    capsys.readouterr()
    assert main(["-q", "slo", "rules", "--check"]) == 1
    out, err = capsys.readouterr()
    assert "-    expr: vector(0.999)" in out and "+    expr: vector(0.995)" in out
    assert "out of date" in err
    # the fix the message names works (the catalogue itself is fine, so generating is allowed)
    assert main(["-q", "slo", "rules", "--output", DEPLOYED_RULES]) == 0
    assert _rules_problems(repo) == [] and validate_tree(repo).ok
    assert main(["-q", "slo", "rules", "--check"]) == 0


def test_deleted_rules_are_named_and_a_tree_without_the_monitoring_role_is_not_asked(
    seed_tree: Path,
) -> None:
    (seed_tree / DEPLOYED_RULES).unlink()
    [problem] = _rules_problems(seed_tree)
    assert "is missing" in problem
    shutil.rmtree(seed_tree / "infra/ansible/roles/monitoring")
    assert _rules_problems(seed_tree) == []


def test_output_is_deterministic() -> None:
    assert render_rules(slos()) == render_rules(slos())


@pytest.mark.parametrize(
    ("seconds_in", "text"),
    [(3600, "1h"), (86400 * 3, "3d"), (300, "5m"), (0.5, "500ms"), (90, "90s"), (1209600, "2w")],
)
def test_durations_render_in_their_largest_exact_unit(seconds_in: float, text: str) -> None:
    assert prom_duration(seconds_in) == text
    assert seconds(text) == seconds_in
