"""``infrabot doctor``: the CLI as a user runs it, against the GitHub fake over real HTTP,
and the pure rules table by table."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.github import FakeGitHub

from bot.cli import main
from bot.doctor.checks import (
    WORKFLOWS,
    GitHubFacts,
    Protection,
    check_alert_intake,
    check_credentials,
    check_permissions,
    check_protection,
    check_public_url,
    check_secret,
)
from bot.doctor.probe import alert_intake
from bot.flow.checks import DRY_RUN, VALIDATE

pytestmark = pytest.mark.integration

USERS = {"alice": "admin", "bob": "write", "carol": "read"}
REPO = Path(__file__).parents[1]
SECRET = "s3cret-" + "x" * 40
ENV = (
    "INFRABOT_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    "INFRABOT_APP_ID",
    "INFRABOT_APP_PRIVATE_KEY",
    "INFRABOT_APP_INSTALLATION_ID",
    "INFRABOT_WEBHOOK_SECRET",
)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", USERS).serving() as fake:
        yield fake


def _push_workflows(hub: FakeGitHub, tmp: Path, names: tuple[str, ...] = WORKFLOWS) -> None:
    url = hub.git_url.replace("http://", f"http://alice:{hub.token('alice')}@")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True)
    folder = clone / ".github" / "workflows"
    folder.mkdir(parents=True)
    for name in names:
        folder.joinpath(name).write_text((REPO / ".github" / "workflows" / name).read_text())
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "workflows"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], check=True)


@pytest.fixture
def checkout(hub: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose infrabot.yaml points at the fake, the App in the environment."""
    root = tmp_path / "checkout"
    root.mkdir()
    root.joinpath("infrabot.yaml").write_text(
        "forge: github\n"
        "github:\n"
        f"  repository: {hub.full_name}\n"
        f"  api_url: {hub.url}\n"
        "  timeout: 5\n"
        "  retries: 1\n"
        "  backoff: 0.01\n"
    )
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INFRABOT_APP_ID", str(hub.app_id))
    monkeypatch.setenv("INFRABOT_APP_INSTALLATION_ID", str(hub.installation_id))
    monkeypatch.setenv("INFRABOT_APP_PRIVATE_KEY", hub.app_private_key)
    _push_workflows(hub, tmp_path)
    hub.protect("main", (VALIDATE, DRY_RUN), approvals=1)
    return root


def _doctor(root: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["--repo", str(root), "doctor", *flags])
    out = capsys.readouterr()
    return code, out.out + out.err


def _line(out: str, check: str) -> str:
    return next(line for line in out.splitlines() if line.split(" — ")[0].split()[-1] == check)


def test_a_good_github_setup_passes(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.app_permissions["administration"] = "read"  # lets the App read the review rule
    code, out = _doctor(checkout, capsys)
    assert code == 0, out
    assert "PROBLEM" not in out
    assert _line(out, "credentials").startswith("ok")
    assert "infrabot[bot]" in _line(out, "credentials")
    assert "infrabot/validate and infrabot/dry-run and 1 approving" in _line(out, "protection")
    assert out.rstrip().endswith("infrabot doctor: ready")


def test_an_app_without_administration_cannot_see_the_review_rule(
    checkout: Path,
    hub: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _doctor(checkout, capsys)
    assert code == 1
    line = _line(out, "protection")
    assert line.startswith("PROBLEM") and "readable only by an admin" in line
    # an admin runs the doctor with their own token: the whole rule is read, and it passes
    for name in ("INFRABOT_APP_ID", "INFRABOT_APP_PRIVATE_KEY", "INFRABOT_APP_INSTALLATION_ID"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", hub.token("alice"))
    code, out = _doctor(checkout, capsys)
    assert code == 0, out


def test_json_lists_every_check(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.app_permissions["administration"] = "read"
    code, out = _doctor(checkout, capsys, "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True
    assert [c["check"] for c in data["checks"]] == [
        "config",
        "credentials",
        "permissions",
        "webhook secret",
        "workflows",
        "protection",
    ]


def test_an_unprotected_default_branch_is_a_problem(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.protections.clear()
    code, out = _doctor(checkout, capsys)
    assert code == 1
    line = _line(out, "protection")
    assert line.startswith("PROBLEM") and "main is not protected" in line
    assert "require the statuses infrabot/validate and infrabot/dry-run" in line
    assert out.rstrip().endswith("infrabot doctor: needs fixing")


def test_a_missing_required_status_is_named(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.protect("main", (VALIDATE, "ci/build"), approvals=2)
    hub.app_permissions["administration"] = "read"
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert "main does not require the status infrabot/dry-run" in _line(out, "protection")


def test_protection_without_a_review_rule_is_a_problem(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.protect("main", (VALIDATE, DRY_RUN), approvals=None)
    hub.app_permissions["administration"] = "read"
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert "main requires no approving review" in _line(out, "protection")


def test_a_bad_token_is_refused_and_never_printed(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("INFRABOT_APP_ID", "INFRABOT_APP_PRIVATE_KEY", "INFRABOT_APP_INSTALLATION_ID"):
        monkeypatch.delenv(name)
    bad = "ghp_" + "0" * 36
    monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", bad)
    code, out = _doctor(checkout, capsys)
    assert code == 1
    line = _line(out, "credentials")
    assert line.startswith("PROBLEM") and "GitHub refused the credentials" in line
    assert "create a new token" in line
    assert bad not in out and "0" * 36 not in out
    assert _line(out, "protection").startswith("n/a")


def test_an_app_key_that_is_not_a_key_is_one_clear_line(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFRABOT_APP_PRIVATE_KEY", "not a key")
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert "INFRABOT_APP_PRIVATE_KEY is not the App's private key" in _line(out, "credentials")


def test_an_api_that_does_not_answer_points_at_api_url(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    config = checkout / "infrabot.yaml"
    config.write_text(config.read_text().replace(hub.url, "http://127.0.0.1:9"))
    code, out = _doctor(checkout, capsys)
    assert code == 1
    line = _line(out, "credentials")
    assert "GitHub did not answer" in line and "check github.api_url" in line


def test_no_credentials_say_which_variables_to_set(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INFRABOT_APP_ID")
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert "set all of INFRABOT_APP_ID" in _line(out, "credentials")


def test_serving_without_a_webhook_secret_is_a_problem(
    checkout: Path, hub: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _doctor(checkout, capsys, "--serve")
    assert code == 1
    line = _line(out, "secret")
    assert line.startswith("PROBLEM") and "INFRABOT_WEBHOOK_SECRET is not set" in line
    # and the workflows would handle every event a second time beside the server
    assert "each event is handled twice" in _line(out, "workflows")


def test_serving_with_a_secret_and_no_workflows_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = FakeGitHub(tmp_path / "served", USERS).start()
    try:
        root = tmp_path / "served-checkout"
        root.mkdir()
        root.joinpath("infrabot.yaml").write_text(
            f"forge: github\ngithub:\n  repository: {hub.full_name}\n  api_url: {hub.url}\n"
        )
        for name in ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", hub.token("alice"))
        monkeypatch.setenv("INFRABOT_WEBHOOK_SECRET", SECRET)
        hub.protect("main", (VALIDATE, DRY_RUN), approvals=1)
        code, out = _doctor(root, capsys, "--serve")
        assert code == 0, out
        assert SECRET not in out
        assert "as alice" in _line(out, "credentials")
    finally:
        hub.stop()
    assert hub.errors == []


def test_a_writer_token_sees_the_statuses_but_not_the_review_rule(
    checkout: Path,
    hub: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("INFRABOT_APP_ID", "INFRABOT_APP_PRIVATE_KEY", "INFRABOT_APP_INSTALLATION_ID"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", hub.token("bob"))
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert _line(out, "permissions").startswith("ok")
    assert "readable only by an admin" in _line(out, "protection")
    hub.protect("main", (VALIDATE,), approvals=1)
    _, out = _doctor(checkout, capsys)
    assert "does not require the status infrabot/dry-run" in _line(out, "protection")


def test_a_reader_token_cannot_write(
    checkout: Path,
    hub: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("INFRABOT_APP_ID", "INFRABOT_APP_PRIVATE_KEY", "INFRABOT_APP_INSTALLATION_ID"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", hub.token("carol"))
    code, out = _doctor(checkout, capsys)
    assert code == 1
    assert "carol cannot write to acme/infra" in _line(out, "permissions")


def test_an_app_without_statuses_permission_is_a_problem(
    checkout: Path, hub: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.app_permissions["statuses"] = "read"
    del hub.app_permissions["issues"]
    code, out = _doctor(checkout, capsys)
    assert code == 1
    line = _line(out, "permissions")
    assert "the App cannot write issues, statuses" in line
    assert "issues: read and write, statuses: read and write" in line


def test_missing_workflows_are_named(
    tmp_path: Path,
    hub: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    root.joinpath("infrabot.yaml").write_text(
        f"forge: github\ngithub:\n  repository: {hub.full_name}\n  api_url: {hub.url}\n"
    )
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INFRABOT_GITHUB_TOKEN", hub.token("alice"))
    _push_workflows(hub, tmp_path, ("infrabot-tickets.yml",))
    code, out = _doctor(root, capsys)
    assert code == 1
    line = _line(out, "workflows")
    assert "missing on the default branch: infrabot-pull-requests.yml, infrabot-apply.yml" in line


def test_the_local_forge_says_what_applies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "local"
    root.mkdir()
    root.joinpath("infrabot.yaml").write_text(
        "forge: local\nusers: {alice: admin, bob: write, carol: read}\n"
    )
    code, out = _doctor(root, capsys)
    assert code == 0, out
    assert _line(out, "protection").startswith("n/a")
    root.joinpath("infrabot.yaml").write_text("forge: gitlab\n")
    code, out = _doctor(root, capsys)
    assert code == 1
    assert _line(out, "config").startswith("PROBLEM")


def test_the_doctor_knows_every_infrabot_workflow() -> None:
    shipped = sorted(p.name for p in (REPO / ".github" / "workflows").glob("infrabot-*.yml"))
    assert sorted(WORKFLOWS) == shipped


# -- the pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "private", "verdict"),
    [
        (("repo", "workflow"), True, "ok"),
        (("public_repo",), True, "problem"),
        (("public_repo",), False, "ok"),
        ((), True, "problem"),
        (None, True, "ok"),  # fine-grained: no scopes header; the role decides
    ],
)
def test_classic_token_scopes(scopes: tuple[str, ...] | None, private: bool, verdict: str) -> None:
    facts = GitHubFacts(
        repository="a/b", auth="token", repo_write=True, token_scopes=scopes, private=private
    )
    assert check_permissions(facts).verdict == verdict


@pytest.mark.parametrize(
    ("rule", "verdict", "says"),
    [
        (Protection(branch="main", protected=False), "problem", "not protected"),
        (
            Protection(branch="main", protected=True, contexts=(DRY_RUN,), approvals=1),
            "problem",
            "infrabot/validate",
        ),
        (
            Protection(branch="main", protected=True, contexts=(VALIDATE, DRY_RUN), approvals=0),
            "problem",
            "no approving review",
        ),
        (
            Protection(branch="main", protected=True, contexts=(VALIDATE, DRY_RUN), approvals=1),
            "ok",
            "1 approving",
        ),
    ],
)
def test_protection_rules(rule: Protection, verdict: str, says: str) -> None:
    line = check_protection(GitHubFacts(repository="a/b", protection=rule))
    assert line.verdict == verdict and says in line.message + line.fix


def test_a_token_that_cannot_say_whose_it_is_needs_bot_login() -> None:
    facts = GitHubFacts(repository="a/b", auth="token", repo_write=None)
    line = check_credentials(facts)
    assert line.verdict == "problem" and "github-actions[bot]" in line.fix
    named = facts.model_copy(update={"bot_login": "github-actions[bot]"})
    assert check_credentials(named).verdict == "ok"


def test_log_links_need_https() -> None:
    assert check_public_url("").verdict == "ok"
    assert check_public_url("http://bot.example.com").verdict == "problem"
    assert "https://bot.example.com/logs/" in check_public_url("https://bot.example.com/").message


def test_a_short_webhook_secret_is_a_problem() -> None:
    assert check_secret("serve", 8).verdict == "problem"
    assert check_secret("serve", 64).verdict == "ok"
    assert check_secret("actions", 0).verdict == "n/a"


GOOD = "t" * 40


@pytest.mark.parametrize(
    ("environ", "verdict", "says"),
    [
        ({}, "n/a", "refuses every post"),
        ({"INFRABOT_ALERTS_TOKEN": GOOD}, "ok", "accepts a bearer token"),
        ({"INFRABOT_ALERTS_TOKEN": "short"}, "problem", "only 5 characters"),
        ({"INFRABOT_ALERTS_BASIC": "am:" + GOOD}, "ok", "accepts basic auth"),
        ({"INFRABOT_ALERTS_BASIC": GOOD}, "problem", "is not user:password"),
        ({"INFRABOT_ALERTS_BASIC": ":" + GOOD}, "problem", "is not user:password"),
        ({"INFRABOT_ALERTS_BASIC": "am:"}, "problem", "is not user:password"),
        (
            {"INFRABOT_ALERTS_TOKEN": GOOD, "INFRABOT_ALERTS_BASIC": "am:weak"},
            "problem",
            "only 4 characters",  # the weakest credential decides
        ),
        (
            {"INFRABOT_ALERTS_TOKEN": GOOD, "INFRABOT_ALERTS_BASIC": "am:" + GOOD},
            "ok",
            "a bearer token and basic auth",
        ),
    ],
)
def test_alert_intake_credentials(environ: dict[str, str], verdict: str, says: str) -> None:
    line = check_alert_intake(alert_intake(environ))
    assert line.verdict == verdict and says in line.message
    assert GOOD not in line.model_dump_json()


def test_serve_reports_its_alert_intake_and_never_its_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "local"
    root.mkdir()
    root.joinpath("infrabot.yaml").write_text("forge: local\nusers: {alice: admin, bob: write}\n")
    monkeypatch.setenv("INFRABOT_ALERTS_TOKEN", "short-secret")
    code, out = _doctor(root, capsys, "--serve")
    assert code == 1 and _line(out, "intake").startswith("PROBLEM")
    assert "short-secret" not in out
    monkeypatch.setenv("INFRABOT_ALERTS_TOKEN", GOOD)
    code, out = _doctor(root, capsys, "--serve", "--json")
    assert code == 0, out
    assert GOOD not in out and "alert intake" in out
    code, out = _doctor(root, capsys)  # not serving: /alerts is not asked about
    assert "intake" not in out
