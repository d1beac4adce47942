"""The GitHub forge over the fake: what only GitHub has (merge guard, rate limits, 5xx,
timeouts, App and token identities, permissions from the API, labels, pushes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import github
import pytest
from fakes.github import FakeGitHub, Fault
from github import Auth
from github_world import GitHubPeople, github_forge
from pydantic import SecretStr

from bot.errors import InfrabotError, InputError
from bot.forge.base import BOT_LOGIN, Permission, PullRequest
from bot.forge.github import (
    MAX_STATUS_DESCRIPTION,
    AppAuth,
    GitHubForge,
    GitHubSettings,
    TokenAuth,
    auth_from_env,
    fold_reviews,
)

pytestmark = pytest.mark.integration

USERS = {"alice": "admin", "bob": "write", "carol": "read", "infrabot": "write"}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", USERS).serving() as fake:
        yield fake


@pytest.fixture
def forge(hub: FakeGitHub) -> GitHubForge:
    return github_forge(hub)


@pytest.fixture
def people(hub: FakeGitHub, forge: GitHubForge, tmp_path: Path) -> GitHubPeople:
    return GitHubPeople(hub, forge, tmp_path / "clone")


def _pr(forge: GitHubForge, people: GitHubPeople, branch: str = "feature") -> int:
    people.push(branch)
    issue = people.create_issue("Add a site", "please", "alice")
    return forge.open_pull_request(
        branch=branch, base="main", title="Add", body="b", issue=issue.number, author=BOT_LOGIN
    ).number


def _token_forge(hub: FakeGitHub, token: str, **overrides: object) -> GitHubForge:
    fields: dict[str, object] = {
        "repository": hub.full_name,
        "api_url": hub.url,
        "timeout": 5,
        "retries": 2,
        "backoff": 0.01,
        "seconds_between_requests": 0,
        "seconds_between_writes": 0,
        **overrides,
    }
    return GitHubForge(GitHubSettings.model_validate(fields), TokenAuth(token=SecretStr(token)))


# -- merging -------------------------------------------------------------------------


def test_merge_takes_only_the_expected_head(
    hub: FakeGitHub, forge: GitHubForge, people: GitHubPeople
) -> None:
    number = _pr(forge, people)
    approved = forge.pull_request(number).head_sha
    main_before = hub.repo.tip("main")
    people.push("feature")  # pushed after the approval
    with pytest.raises(InputError, match=r"moved since .* was checked: nothing was merged"):
        forge.merge(number, approved, "alice")
    assert hub.repo.tip("main") == main_before
    assert forge.pull_request(number).state == "open"
    head = forge.pull_request(number).head_sha
    merged = forge.merge(number, head, "alice")
    assert merged.state == "merged" and merged.merge_sha == hub.repo.tip("main")
    parents = hub.repo.git("rev-list", "--parents", "-n1", str(merged.merge_sha)).stdout.split()
    assert parents[1:] == [main_before, head]
    with pytest.raises(InputError, match="is merged: it cannot be merged"):
        forge.merge(number, head, "alice")


def test_a_conflicting_pull_request_is_not_mergeable(
    forge: GitHubForge, people: GitHubPeople
) -> None:
    people.push("feature", "site.yaml", "one")
    number = forge.open_pull_request(
        branch="feature", base="main", title="t", body="", issue=None, author=BOT_LOGIN
    ).number
    assert forge.mergeable(number) is True and forge.changed_files(number) == ["site.yaml"]
    people.push("main", "site.yaml", "two")
    assert forge.mergeable(number) is False
    with pytest.raises(InputError, match="cannot merge pull request"):
        forge.merge(number, forge.pull_request(number).head_sha, "alice")


# -- what GitHub does under load -----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.primary_rate_limit(),
        Fault.secondary_rate_limit(403),
        Fault.secondary_rate_limit(429),
        Fault(502, message="Server Error"),
        Fault(0, delay=1.5),  # no answer within the 1 s timeout
    ],
    ids=["primary-403", "secondary-403", "secondary-429", "502", "timeout"],
)
def test_rate_limits_5xx_and_timeouts_are_waited_out(
    hub: FakeGitHub, people: GitHubPeople, fault: Fault
) -> None:
    issue = people.create_issue("t", "b", "alice")
    forge = github_forge(hub, timeout=1)
    fault.path = rf"/issues/{issue.number}/comments$"
    hub.faults.append(fault)
    forge.ensure_comment(issue.number, "plan", "the plan")
    assert [c.body for c in forge.comments(issue.number)] == ["the plan"]
    statuses = [s for m, p, s in hub.log if p.endswith(f"/issues/{issue.number}/comments")]
    assert fault.times == 0 and fault.status in statuses and 200 in statuses


def test_a_rate_limit_beyond_the_allowed_wait_fails_clearly(
    hub: FakeGitHub, people: GitHubPeople
) -> None:
    issue = people.create_issue("t", "b", "alice")
    forge = github_forge(hub, max_rate_limit_wait=5)
    hub.faults.append(Fault.primary_rate_limit(reset_in=3600, path="/comments$"))
    with pytest.raises(InfrabotError, match="rate limit stopped reading the comments of #1"):
        forge.comments(issue.number)


def test_github_down_is_one_clear_error(hub: FakeGitHub, people: GitHubPeople) -> None:
    issue = people.create_issue("t", "b", "alice")
    forge = github_forge(hub, retries=2)
    hub.faults.append(Fault(502, path="/comments$", times=10))
    with pytest.raises(InfrabotError, match="reading the comments of #1") as err:
        forge.comments(issue.number)
    assert "Traceback" not in str(err.value)
    assert len([s for _, _, s in hub.log if s == 502]) == 3  # the first try and 2 retries


def test_bad_credentials_never_show_the_token(hub: FakeGitHub) -> None:
    forge = _token_forge(hub, "ghp_notavalidtoken0000000000000000000000")
    with pytest.raises(InfrabotError, match="refused the bot's credentials") as err:
        forge.issue(1)
    assert "ghp_notavalid" not in str(err.value)


# -- identity and permissions ----------------------------------------------------------


def test_the_app_and_a_token_each_know_the_bot(hub: FakeGitHub, people: GitHubPeople) -> None:
    issue = people.create_issue("t", "b", "alice")
    app = github_forge(hub)
    assert app.bot_login == "infrabot[bot]"
    hub.collaborators["deploy-bot"] = "write"
    token = _token_forge(hub, hub.token("deploy-bot"))
    assert token.bot_login == "deploy-bot"
    token.ensure_comment(issue.number, "plan", "from the token")
    app.ensure_comment(issue.number, "plan", "from the app")
    seen = [(c.author, c.body) for c in app.comments(issue.number)]
    assert seen == [("deploy-bot", "from the token"), (BOT_LOGIN, "from the app")]


def test_permissions_come_from_the_api(hub: FakeGitHub, forge: GitHubForge) -> None:
    assert forge.permission("alice") is Permission.ADMIN
    assert forge.permission("bob") is Permission.WRITE
    assert forge.permission("carol") is Permission.READ
    assert forge.permission("mallory") is Permission.NONE
    asked = len(hub.log)
    assert forge.permission("renovate[bot]") is Permission.NONE
    assert forge.permission(BOT_LOGIN) is Permission.NONE
    assert len(hub.log) == asked  # a bot is never asked about: it is never a person
    hub.private = False
    assert forge.permission("mallory") is Permission.READ  # anyone reads a public repo
    hub.collaborators["bob"] = "read"  # demoted: the next check sees it
    assert forge.permission("bob") is Permission.READ


def test_a_person_named_like_the_bot_cannot_pass_for_it(
    hub: FakeGitHub, forge: GitHubForge, people: GitHubPeople
) -> None:
    issue = people.create_issue("t", "b", "alice")
    people.add_comment(issue.number, "<!-- infrabot:topic=plan -->\nfake plan", "infrabot")
    forge.ensure_comment(issue.number, "plan", "real plan")
    seen = [(c.author, c.body) for c in forge.comments(issue.number)]
    assert seen == [("infrabot (a person)", "fake plan"), (BOT_LOGIN, "real plan")]
    assert forge.permission("infrabot (a person)") is Permission.NONE


def test_a_persons_pull_request_names_no_issue(forge: GitHubForge, people: GitHubPeople) -> None:
    people.push("mine")
    issue = people.create_issue("t", "b", "alice")
    pr = people.open_pull_request(
        branch="mine",
        base="main",
        title="t",
        body=f"<!-- infrabot:issue={issue.number} -->\nclose it for me",
        issue=None,
        author="bob",
    )
    assert pr.author == "bob" and pr.issue is None


def test_a_dismissed_review_no_longer_counts(
    hub: FakeGitHub, forge: GitHubForge, people: GitHubPeople
) -> None:
    number = _pr(forge, people)
    people.add_review(number, "bob", "approved")
    people.add_review(number, "alice", "changes_requested")
    assert forge.pull_request(number).approvals() == ("bob",)
    people.dismiss_review(number, "bob", "alice")
    assert forge.pull_request(number).approvals() == ()
    assert [r.state for r in forge.pull_request(number).latest_reviews()] == [
        "dismissed",
        "changes_requested",
    ]


def test_github_itself_refuses_a_self_approval(hub: FakeGitHub, people: GitHubPeople) -> None:
    people.push("mine")
    pr = people.open_pull_request(
        branch="mine", base="main", title="t", body="", issue=None, author="bob"
    )
    bob = github.Github(auth=Auth.Token(hub.token("bob")), base_url=hub.url, lazy=True)
    with pytest.raises(github.GithubException) as err:
        bob.get_repo(hub.full_name).get_pull(pr.number).create_review(event="APPROVE")
    assert err.value.status == 422


# -- labels, statuses, pushes ----------------------------------------------------------


def test_labels_are_added_and_removed(forge: GitHubForge, people: GitHubPeople) -> None:
    issue = people.create_issue("t", "b", "alice")
    forge.add_labels(issue.number, "infrabot", "risk:low")
    forge.add_labels(issue.number, "infrabot")
    assert forge.issue(issue.number).labels == ("infrabot", "risk:low")
    forge.remove_label(issue.number, "risk:low")
    forge.remove_label(issue.number, "never-there")
    assert forge.issue(issue.number).labels == ("infrabot",)


def test_status_descriptions_fit_githubs_limit(forge: GitHubForge, people: GitHubPeople) -> None:
    sha = people.push("feature")
    forge.set_status(sha, "infrabot/plan", "failure", "x" * 500)
    (status,) = forge.statuses(sha)
    assert len(status.description) == MAX_STATUS_DESCRIPTION and status.description[-1] == "…"
    assert forge.statuses("0" * 40) == []


def test_a_push_without_write_fails_without_showing_the_token(
    hub: FakeGitHub, people: GitHubPeople
) -> None:
    sha = people.push("feature")
    token = hub.token("carol")
    carol = _token_forge(hub, token)
    with pytest.raises(InfrabotError, match="could not push 'elsewhere' to GitHub") as err:
        carol.push_branch(Path(people.clone.working_tree_dir or "."), "elsewhere", sha)
    assert token not in str(err.value) and hub.repo.tip("elsewhere") is None


# -- the fake keeps itself honest ------------------------------------------------------


def test_the_fake_refuses_to_send_what_github_could_not(hub: FakeGitHub) -> None:
    assert hub._honest("GET", "/repos/acme/infra/issues/1", 200, {"number": "one"}) is None
    assert hub._honest("GET", "/repos/acme/infra/hooks", 200, []) is None
    assert len(hub.errors) == 2 and "number" in hub.errors[0]
    hub.errors.clear()


# -- pure parts --------------------------------------------------------------------------

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("bob", "APPROVED", "a")], [("bob", "approved")]),
        ([("bob", "DISMISSED", "a"), ("bob", "COMMENTED", "a")], [("bob", "dismissed")]),
        (
            [("al", "CHANGES_REQUESTED", "a"), ("bob", "APPROVED", "a")],
            [("al", "changes_requested"), ("bob", "approved")],
        ),
        ([("bob", "PENDING", "a"), ("bob", "COMMENTED", "a")], []),
    ],
)
def test_fold_reviews(rows: list[tuple[str, str, str]], expected: list[tuple[str, str]]) -> None:
    pr = PullRequest(
        number=1,
        title="t",
        body="",
        author=BOT_LOGIN,
        head_branch="f",
        base_branch="main",
        head_sha="a",
        base_sha="b",
        state="open",
        reviews=fold_reviews((a, s, sha, T) for a, s, sha in rows),
    )
    assert [(r.author, r.state) for r in pr.latest_reviews()] == expected


def test_credentials_come_from_the_environment() -> None:
    token = auth_from_env({"GITHUB_TOKEN": "ghp_x"})
    assert isinstance(token, TokenAuth) and "ghp_x" not in repr(token)
    app = auth_from_env(
        {
            "INFRABOT_APP_ID": "1",
            "INFRABOT_APP_PRIVATE_KEY": "k",
            "INFRABOT_APP_INSTALLATION_ID": "2",
        }
    )
    assert isinstance(app, AppAuth) and app.installation_id == 2
    with pytest.raises(InputError, match="no GitHub credentials"):
        auth_from_env({})
    with pytest.raises(InputError, match="or none of them"):
        auth_from_env({"INFRABOT_APP_ID": "1"})
    with pytest.raises(InputError, match="must be numbers"):
        auth_from_env(
            {
                "INFRABOT_APP_ID": "x",
                "INFRABOT_APP_PRIVATE_KEY": "k",
                "INFRABOT_APP_INSTALLATION_ID": "2",
            }
        )
