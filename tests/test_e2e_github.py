"""The whole loop on GitHub, through ``infrabot handle-event`` as GitHub Actions runs it.

GitHub is the test-only fake over real HTTP (every response checked against GitHub's REST
description); its repository is a real bare git repository served by ``git http-backend``.
The runner's working copy is a clone of it, with ``infrabot.yaml`` saying ``forge:
github``; the bot authenticates as the GitHub App.  People act through the real PyGithub
client with their own tokens, as they would in GitHub's UI, and every event the bot sees
is the payload GitHub would send, rendered from the fake's state
(``tests/fakes/github/webhooks.py``).  The estate the apply touches is the local one:
real nginx and dnsmasq, and a container namespace.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import github
import pytest
import yaml
from fakes.github import FakeGitHub, Fault
from fakes.github import webhooks as hooks
from fakes.github.loop import open_fork_pull, push_direct
from github import Auth
from test_e2e_walkthrough import cli, needs_netns

from bot.cli import main
from bot.demo import SEED_REQUEST, make_copy
from bot.flow.verify import http_get, resolve

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.integration]
PEOPLE = {"alice": "admin", "bob": "write", "carol": "read"}


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class GitHubLoop:
    """The fake GitHub, the people who use it, and the bot's working copy (``runner``)."""

    def __init__(
        self, tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # public, so someone who is no collaborator can still comment (with read)
        self.fake = FakeGitHub(tmp / "github", PEOPLE, private=False).start()
        self.monkeypatch, self.capsys = monkeypatch, capsys
        self._clients: dict[str, github.Github] = {}
        self.runs = iter(range(1000, 100_000))
        seed = tmp / "seed"
        seed.mkdir(parents=True)
        make_copy(ROOT, seed)
        config = yaml.safe_load((seed / "infrabot.yaml").read_text())
        config.pop("users", None)  # on GitHub permissions come from GitHub
        config["forge"] = "github"
        config["github"] = {
            "repository": self.fake.full_name,
            "api_url": self.fake.url,
            "timeout": 5,
            "retries": 4,
            "backoff": 0.01,
            "secondary_rate_wait": 2,
            "max_rate_limit_wait": 10,
            "seconds_between_requests": 0,
            "seconds_between_writes": 0,
        }
        (seed / "infrabot.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        ident = ["-c", "user.name=alice", "-c", "user.email=alice@example.com"]
        _git(*ident, "commit", "-qam", "infrabot on GitHub", cwd=seed)
        _git("push", "-q", "--force", str(self.fake.repo.path), "main:main", cwd=seed)
        # the runner's checkout, as actions/checkout makes it (no credentials kept)
        self.runner = tmp / "runner"
        basic = base64.b64encode(f"x:{self.fake.token('alice')}".encode()).decode()
        header = f"http.extraHeader=Authorization: Basic {basic}"
        _git("-c", header, "clone", "-q", self.fake.git_url, str(self.runner))
        monkeypatch.chdir(self.runner)
        monkeypatch.setenv("INFRABOT_APP_ID", str(self.fake.app_id))
        monkeypatch.setenv("INFRABOT_APP_INSTALLATION_ID", str(self.fake.installation_id))
        monkeypatch.setenv("INFRABOT_APP_PRIVATE_KEY", self.fake.app_private_key)
        for name in ("GITHUB_TOKEN", "INFRABOT_GITHUB_TOKEN", "ANTHROPIC_API_KEY"):
            monkeypatch.delenv(name, raising=False)

    # -- people, through the real client ----------------------------------------------

    def as_(self, login: str) -> Any:
        if login not in self._clients:
            self._clients[login] = github.Github(
                auth=Auth.Token(self.fake.token(login)),
                base_url=self.fake.url,
                seconds_between_requests=0,
                seconds_between_writes=0,
                retry=None,
                lazy=True,
            )
        return self._clients[login].get_repo(self.fake.full_name)

    def comments(self, number: int) -> list[Any]:
        return list(self.as_("alice").get_issue(number).get_comments())

    def bot_comment(self, number: int, topic: str) -> str:
        marker = f"<!-- infrabot:topic={topic} -->"
        found = [c.body for c in self.comments(number) if c.body.startswith(marker)]
        assert len(found) == 1, (topic, [c.body[:80] for c in self.comments(number)])
        return str(found[0])

    # -- the bot, as a workflow run ---------------------------------------------------

    def handle(self, delivery: hooks.Delivery, run: int | None = None) -> tuple[int, str]:
        """One workflow run of ``delivery`` (``run``: the same id for a re-run): the exit
        code and the outcome's message."""
        path = delivery.write(self.runner.parent / f"event-{delivery.id}.json")
        self.monkeypatch.setenv("GITHUB_EVENT_NAME", delivery.event)
        self.monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
        self.monkeypatch.setenv("GITHUB_RUN_ID", str(run if run is not None else next(self.runs)))
        self.capsys.readouterr()
        code = main(["-q", "handle-event", "--json"])
        out, err = self.capsys.readouterr()
        try:
            return code, str(json.loads(out)["message"])
        except (ValueError, KeyError):
            return code, out + err

    def comment(self, number: int, login: str, body: str) -> hooks.Delivery:
        made = self.as_(login).get_issue(number).create_comment(body)
        return hooks.comment(self.fake, made.id)

    def approve(self, number: int, login: str) -> hooks.Delivery:
        pull = self.as_(login).get_pull(number)
        made = pull.create_review(event="APPROVE")
        return hooks.review(self.fake, number, made.id)

    def merge(self, number: int, login: str) -> tuple[hooks.Delivery, hooks.Delivery]:
        """``login`` merges in GitHub's UI: GitHub sends ``pull_request`` closed (merged)
        and the ``push`` of the merge commit to the base branch."""
        before = self.fake.repo.tip("main")
        assert before is not None
        pull = self.as_(login).get_pull(number)
        done = pull.merge(sha=pull.head.sha, merge_method="merge")
        assert done.merged, done.message
        closed = hooks.pull_request(self.fake, number, "closed", sender=login)
        return closed, hooks.push(self.fake, "main", before, done.sha, login)

    def close(self) -> None:
        self.fake.stop()
        assert self.fake.errors == [], self.fake.errors


@pytest.fixture
def loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[GitHubLoop]:
    world = GitHubLoop(tmp_path, monkeypatch, capsys)
    yield world
    world.close()


def _statuses(loop: GitHubLoop, sha: str) -> dict[str, str]:
    combined = loop.as_("alice").get_commit(sha).get_combined_status()
    return {s.context: s.state for s in combined.statuses}


@needs_netns
def test_issue_to_evidence_on_github_through_actions(
    loop: GitHubLoop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "estate", "up")[0] == 0
    try:
        _the_loop(loop, capsys)
    finally:
        assert cli(capsys, "estate", "down")[0] == 0


def _the_loop(loop: GitHubLoop, capsys: pytest.CaptureFixture[str]) -> None:
    fake = loop.fake
    issue = loop.as_("alice").create_issue(SEED_REQUEST, body="and set up monitoring")
    opened = hooks.issue(fake, issue.number)
    code, message = loop.handle(opened)
    assert code == 0 and message.startswith("opened PR #"), message
    number = int(message.split("#")[1])
    pull = loop.as_("alice").get_pull(number)
    assert pull.user.login == "infrabot[bot]" and pull.head.ref.startswith("infrabot/")
    assert "Acceptance criteria" in pull.body
    assert "server_name api-scanner.example.com;" in pull.body
    head = pull.head.sha
    assert _statuses(loop, head) == {
        "infrabot/validate": "success",
        "infrabot/dry-run": "success",
        "infrabot/record": "success",  # the seal of the check record (docs/adr/0013)
    }
    assert f"pull request #{number}" in loop.bot_comment(issue.number, "pr")
    # the same issue event again (a re-run), and the PR event the App's PR triggers
    assert loop.handle(opened)[1].endswith("already being worked on")
    again = loop.handle(hooks.pull_request(fake, number, "opened"))
    assert again == (0, f"PR #{number} at {head[:7]} is already checked")

    # /plan, while GitHub throttles and fails: waited out and retried
    fake.faults += [
        Fault.primary_rate_limit(reset_in=1, method="GET", path=r"/comments$"),
        Fault.secondary_rate_limit(429, method="POST", path=r"/statuses/"),
        Fault(502, method="GET", path=rf"/pulls/{number}$"),
    ]
    code, message = loop.handle(loop.comment(number, "bob", "/plan"))
    assert code == 0 and "validation passed, dry-run successful" in message, message
    answered = {status for _, _, status in fake.log}
    assert {403, 429, 502} <= answered, "the faults were served"
    assert all(f.times == 0 for f in fake.faults)

    # /apply without an approval: refused, once, however often the event comes
    refused = loop.comment(number, "bob", "/apply")
    code, message = loop.handle(refused, run=77)
    assert code == 1 and "needs 1 approval" in message, message
    assert loop.handle(refused, run=77)[1].endswith("was already answered")
    assert loop.handle(refused)[1].endswith("was already answered")
    replies = [c for c in loop.comments(number) if c.user.login == "infrabot[bot]"]
    assert sum("needs 1 approval" in c.body for c in replies) == 1

    # someone who is not a collaborator, and a bot
    code, message = loop.handle(loop.comment(number, "dave", "/apply"))
    assert code == 1 and "@dave has read permission" in message, message
    code, message = loop.handle(loop.comment(number, "renovate[bot]", "/apply"))
    assert code == 0 and "by a bot" in message, message

    # a writer approves; alice merges in GitHub's UI
    assert loop.handle(loop.approve(number, "bob"))[0] == 0
    closed, push = loop.merge(number, "alice")
    code, message = loop.handle(closed)
    assert code == 0 and "the push to main applies it" in message, message
    assert not [c for c in loop.comments(number) if "### Evidence" in c.body]
    code, message = loop.handle(push)
    assert code == 0 and "applied and verified" in message, message
    evidence = [c.body for c in loop.comments(number) if "### Evidence" in c.body]
    assert len(evidence) == 1 and "❌" not in evidence[0], evidence
    assert loop.as_("alice").get_issue(issue.number).state == "closed"
    # both events again: nothing more happens
    assert loop.handle(push)[1].endswith("was already handled")
    assert loop.handle(closed)[0] == 0
    assert len([c for c in loop.comments(number) if "### Evidence" in c.body]) == 1

    hosts = {
        h["name"]: h for h in json.loads(cli(capsys, "estate", "status", "--json")[1])["hosts"]
    }
    dns_port = next(s["port"] for s in hosts["dns1"]["services"] if s["name"] == "dnsmasq")
    http_port = next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx")
    assert resolve("api-scanner.example.com", dns_port) == ["127.0.0.1"]
    status, page = http_get("127.0.0.1", http_port, "api-scanner.example.com")
    assert status == 200 and "container api-scanner" in page


FORK_CHANGE = {
    "infra/state/dns/extra.yaml": (
        "kind: DnsRecord\nname: extra.example.com\nowner: platform\nenvironment: lab\n"
        "type: A\nvalue: 127.0.0.1\nserver: dns1\n"
    )
}


def test_a_fork_an_admin_merge_and_a_direct_push_are_never_applied(loop: GitHubLoop) -> None:
    """No Ansible apply runs here: each case stops before it, and says why."""
    fake = loop.fake
    number = open_fork_pull(fake, "mallory", "Add a DNS record", FORK_CHANGE)
    code, message = loop.handle(hooks.pull_request(fake, number, "opened", sender="mallory"))
    assert message.startswith(f"PR #{number}: checked"), message
    assert set(_statuses(loop, fake._items[number]["head_sha"])) == {
        "infrabot/validate",
        "infrabot/dry-run",
        "infrabot/record",
    }
    assert loop.handle(loop.approve(number, "bob"))[0] == 0
    code, message = loop.handle(loop.comment(number, "alice", "/apply"))
    assert code == 1 and "comes from a fork" in message, message
    reply = [c.body for c in loop.comments(number) if c.user.login == "infrabot[bot]"]
    assert any("never applied by command" in body for body in reply)

    # an admin merges a pull request nobody approved (bypassing branch protection)
    other = open_fork_pull(fake, "mallory", "Another record", {"infra/state/x.txt": "x\n"})
    closed, push = loop.merge(other, "alice")
    assert loop.handle(closed)[0] == 0
    code, message = loop.handle(push)
    assert code == 1 and "not applied" in message, message
    skipped = loop.bot_comment(other, f"apply-skipped-{push.payload['after'][:12]}")
    ticket = int(skipped.split("see #")[1].split(".")[0])
    made = loop.as_("alice").get_issue(ticket)
    assert made.title == f"Merged without passing the gate: PR #{other}"
    assert [label.name for label in made.labels] == ["needs-human"]
    assert loop.handle(push)[1].endswith("was already handled")
    # the apply workflow started by hand for that merge: the same step, nothing more
    again = loop.handle(hooks.dispatch(fake, {"pr": str(other)}, "alice"))
    assert again == (0, f"the merge {push.payload['after'][:7]} was already handled")
    code, message = loop.handle(hooks.dispatch(fake, {"pr": str(number)}, "alice"))
    assert code == 1 and "only a merged pull request is applied" in message, message

    # someone pushes to main directly: not applied, a failing status and a ticket, once
    before = fake.repo.tip("main")
    assert before is not None
    sha = push_direct(fake, "main", {"README.md": "# infra, edited\n"}, "edit on main")
    direct = hooks.push(fake, "main", before, sha, "alice")
    code, message = loop.handle(direct)
    assert code == 1 and "pushed to main directly: not applied" in message, message
    assert _statuses(loop, sha) == {"infrabot/apply": "error"}
    assert loop.handle(direct)[1].endswith("was already handled")
    titles = [i.title for i in loop.as_("alice").get_issues(state="open")]
    assert titles.count(f"Pushed to main without a pull request: {sha[:7]}") == 1
