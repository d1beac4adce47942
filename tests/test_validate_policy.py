"""Policy: loading schemas/policy.yaml and the pure helpers built on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.errors import InfrabotError
from bot.estate.documents import Limits
from bot.validate.policy import (
    POLICY_FILE,
    FreezeWindow,
    Policy,
    ProtectedEnvironment,
    active_freeze,
    approvals_required,
    freeze_findings,
    glob_regex,
    load_policy,
    outside_allowed_paths,
    path_findings,
)

REPO = Path(__file__).resolve().parents[1]

POLICY = Policy(
    protected_environments={
        "production": ProtectedEnvironment(approvals=2),
        "payments": ProtectedEnvironment(approvals=3),
        "sandbox": ProtectedEnvironment(approvals=0),
    },
    default_approvals=1,
    freeze_windows=(
        FreezeWindow(
            start=datetime(2026, 12, 24, tzinfo=UTC),
            end=datetime(2026, 12, 27, tzinfo=UTC),
            reason="holidays",
        ),
        FreezeWindow(start=datetime(2027, 3, 1), end=datetime(2027, 3, 2), reason="migration"),
    ),
)


def test_the_repository_policy_loads() -> None:
    policy = load_policy(REPO)
    assert policy.require_owner and policy.forbid_templating
    assert policy.desired_state_paths == ("infra/state/**",)
    assert approvals_required(policy, ["production"]) == 2


@pytest.mark.parametrize(
    ("environments", "approvals"),
    [
        ([], 1),
        (["lab"], 1),
        (["production"], 2),
        (["lab", "production", "payments"], 3),
        (["sandbox"], 1),  # a protected environment never needs fewer than the default
    ],
)
def test_approvals_required(environments: list[str], approvals: int) -> None:
    assert approvals_required(POLICY, environments) == approvals


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (datetime(2026, 12, 23, 23, 59, tzinfo=UTC), None),
        (datetime(2026, 12, 24, tzinfo=UTC), "holidays"),
        (datetime(2026, 12, 26, 23, 0, tzinfo=timezone(timedelta(hours=-5))), None),
        (datetime(2026, 12, 26, 18, 0, tzinfo=timezone(timedelta(hours=-5))), "holidays"),
        (datetime(2026, 12, 27, tzinfo=UTC), None),
        (datetime(2026, 12, 25), "holidays"),  # a naive now is UTC
        (datetime(2027, 3, 1, 12, tzinfo=UTC), "migration"),  # naive windows are UTC
    ],
)
def test_active_freeze(now: datetime, reason: str | None) -> None:
    window = active_freeze(POLICY, now)
    assert (window.reason if window else None) == reason


@pytest.mark.parametrize(
    ("path", "outside"),
    [
        ("infra/state/sites/a.yaml", False),
        ("infra/state/a/b/c.yaml", False),
        ("./infra/state/x.yaml", False),
        ("infra/ansible/site.yml", True),
        ("schemas/policy.yaml", True),
        (".github/workflows/ci.yml", True),
        ("infra/state/../../bot/cli.py", True),
        ("../infra/state/x.yaml", True),
        ("/infra/state/x.yaml", True),
        ("infra/statefile.yaml", True),
        ("INFRA/state/x.yaml", True),
    ],
)
def test_outside_allowed_paths(path: str, outside: bool) -> None:
    assert outside_allowed_paths(Policy(), [path]) == ([path] if outside else [])


@pytest.mark.parametrize("path", ["../x.yaml", "/etc/x.yaml", "a/../../x.yaml", ".", ".."])
def test_a_path_out_of_the_repository_is_outside_whatever_the_globs_allow(path: str) -> None:
    """A permissive glob would match `../x.yaml` (`**` crosses segments): the path is
    refused before any glob is asked."""
    anything = Policy(desired_state_paths=("**", "**/*.yaml", "*"))
    assert outside_allowed_paths(anything, [path]) == [path]
    assert outside_allowed_paths(anything, ["x.yaml", "a/b.yaml"]) == []


def test_a_change_of_exactly_the_cap_is_allowed_and_one_more_is_not() -> None:
    capped = Policy.model_validate({"limits": {"max_changed_files": 3}})
    files = ["infra/state/a.yaml", "infra/state/b.yaml", "infra/state/c.yaml"]
    assert path_findings(capped, files) == []
    [finding] = path_findings(capped, [*files, "infra/state/d.yaml"])
    assert finding.check == "paths" and finding.file is None
    assert "touches 4 files" in finding.message and "max_changed_files: 3" in finding.message


def test_a_freeze_is_a_warning_on_the_policy_file() -> None:
    [finding] = freeze_findings(POLICY, datetime(2026, 12, 25, tzinfo=UTC))
    assert (finding.check, finding.file, finding.severity) == ("policy", POLICY_FILE, "warning")
    assert "holidays" in finding.message and "/apply is refused" in finding.message
    assert freeze_findings(POLICY, datetime(2026, 12, 28, tzinfo=UTC)) == []


def test_several_globs() -> None:
    policy = Policy(desired_state_paths=("infra/state/**", "docs/*.md"))
    files = ["docs/a.md", "docs/x/a.md", "infra/state/h.yaml", "bot/x.py"]
    assert outside_allowed_paths(policy, files) == ["docs/x/a.md", "bot/x.py"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", "schemas/policy.yaml: expected a mapping, found list"),
        ("", "schemas/policy.yaml: expected a mapping, found NoneType"),
        ("default_approvals: many\n", "schemas/policy.yaml: default_approvals: Input should be"),
        (
            "protected_environments: {production: {approvals: -1}}\n",
            "schemas/policy.yaml: protected_environments.production.approvals: Input should be",
        ),
        (
            "freeze_windows: [{start: 2026-01-02T00:00:00Z, end: 2026-01-01T00:00:00Z,"
            " reason: x}]\n",
            "schemas/policy.yaml: freeze_windows.0: Value error, freeze window ends",
        ),
        ("freeze_windows: [{start: 2026-01-02}]\n", "schemas/policy.yaml: freeze_windows.0.end"),
        ("a: [\n", "schemas/policy.yaml: malformed YAML"),
    ],
)
def test_malformed_policy_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas/policy.yaml").write_text(text)
    with pytest.raises(InfrabotError) as raised:
        load_policy(tmp_path)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("infra/state/**", "infra/state/a.yaml", True),
        ("infra/state/**", "infra/state/a/b.yaml", True),
        ("infra/*/x.yaml", "infra/a/b/x.yaml", False),
        ("**/x.yaml", "x.yaml", True),
        ("**/x.yaml", "a/b/x.yaml", True),
        ("a/?.yaml", "a/b.yaml", True),
        ("a/?.yaml", "a//.yaml", False),
        ("a.b/*", "aXb/c", False),
    ],
)
def test_glob_semantics(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(glob).match(path)) is matches


def test_the_default_caps_fit_the_estates_infrabot_is_built_for() -> None:
    """Issue 9 sizes estates up to 20,000 one-resource files; the shipped policy and the
    model's defaults must let such an estate be read whole (docs/adr/0018)."""
    for limits in (load_policy(REPO).limits, Limits()):
        assert limits.max_files >= 20_000
        assert limits.max_documents >= 20_000
