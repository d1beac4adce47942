"""Bad input, driven through the ``infrabot`` command as a user would: each gets a clear
message on the issue or PR, nothing applies, and nothing is left half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import SEED_REQUEST
from bot.ledger import EstateLock

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def git(repo: Path, *args: str) -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "bob",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "bob",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def seed_net(repo: Path) -> str:
    """The container /24 the copy was moved to (``make_copy`` picks a free one)."""
    text = (repo / "infra/state/containers/status-page.yaml").read_text()
    address = text.split("\nip: ", 1)[1].split("\n", 1)[0]
    return address.rsplit(".", 1)[0] + "."


def branch_with(repo: Path, branch: str, files: dict[str, str]) -> None:
    """A person's branch: edit files in a worktree and commit (main stays checked out).
    The seed's 10.77.0.x addresses become the copy's own subnet."""
    tree = repo.parent / f"wt-{branch.replace('/', '-')}"
    git(repo, "worktree", "add", "-q", "-b", branch, str(tree), "main")
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text.replace("10.77.0.", seed_net(repo)))
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"edit {branch}")
    git(repo, "worktree", "remove", "--force", str(tree))


def pr_json(capsys: pytest.CaptureFixture[str], number: int) -> dict:  # type: ignore[type-arg]
    code, out, _ = run(capsys, "pr", "show", str(number), "--json")
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def open_branch_pr(capsys: pytest.CaptureFixture[str], repo: Path, files: dict[str, str]) -> int:
    branch_with(repo, "bob/change", files)
    code, out, err = run(capsys, "pr", "open", "bob/change", "--as", "bob", "--json")
    assert code == 0, err
    return int(json.loads(out)["number"])


def assert_refused_and_nothing_applied(
    capsys: pytest.CaptureFixture[str], repo: Path, number: int, needle: str
) -> None:
    head_before = git(repo, "rev-parse", "main")
    run(capsys, "pr", "review", str(number), "--approve", "--as", "alice")
    code, out, _ = run(capsys, "pr", "comment", str(number), "/apply", "--as", "alice")
    assert code == 1 and "refused" in out and needle in out
    code, out, _ = run(capsys, "pr", "merge", str(number), "--as", "alice")
    assert code == 1 and "refused" in out
    assert git(repo, "rev-parse", "main") == head_before  # not merged
    assert not (repo / ".infrabot/estate").exists()  # nothing was applied anywhere
    assert EstateLock(repo / ".infrabot/ledger.db").holder() is None  # no stale lock
    bodies = [c["body"] for c in pr_json(capsys, number)["comments"]]
    assert any("refused" in b for b in bodies)


SITE = "infra/state/sites/status-page.yaml"
CONTAINER = "infra/state/containers/status-page.yaml"
GOOD_SITE = (ROOT / SITE).read_text()
GOOD_CONTAINER = (ROOT / CONTAINER).read_text()


@pytest.mark.parametrize(
    ("files", "in_report"),
    [
        pytest.param({SITE: "kind: Site\nname: [oops\n"}, "malformed YAML", id="malformed-yaml"),
        pytest.param(
            {CONTAINER: GOOD_CONTAINER.replace("cores: 1", "cores: lots")},
            "$.cores",
            id="schema-violation",
        ),
        pytest.param(
            {SITE: GOOD_SITE.replace("proxy: proxy1", "proxy: proxy9")}, "proxy9", id="missing-host"
        ),
        pytest.param(
            {
                "infra/state/containers/twin.yaml": GOOD_CONTAINER.replace(
                    "status-page", "twin"
                ).replace("vmid: 100", "vmid: 150")
            },
            "10.77.0.10",
            id="duplicate-ip",
        ),
        pytest.param(
            {
                SITE: GOOD_SITE.replace(
                    '"http://10.77.0.10:8080"', "\"http://{{ lookup('pipe', 'id') }}:8080\""
                )
            },
            "template",
            id="jinja-lookup",
        ),
    ],
)
def test_a_bad_pr_is_reported_and_never_applied(
    capsys: pytest.CaptureFixture[str], repo: Path, files: dict[str, str], in_report: str
) -> None:
    number = open_branch_pr(capsys, repo, files)
    pr = pr_json(capsys, number)
    body = pr["pull_request"]["body"]
    assert in_report.replace("10.77.0.", seed_net(repo)) in body
    assert "dry-run was not run" in body
    states = {s["context"]: s["state"] for s in pr["statuses"]}
    assert states["infrabot/validate"] == "failure"
    assert_refused_and_nothing_applied(capsys, repo, number, "validation")


def test_a_persons_pr_outside_desired_state_is_flagged_not_blocked(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """People may change the Ansible content (reviewers judge it); the check says it used the
    base's content, so nobody mistakes the dry-run for a verdict on those files."""
    number = open_branch_pr(capsys, repo, {"infra/ansible/site.yml": "- hosts: all\n  tasks: []\n"})
    body = pr_json(capsys, number)["pull_request"]["body"]
    assert "infra/ansible/site.yml" in body and "review them yourself" in body
    assert "a bot change may only edit desired state" not in body


def test_a_request_the_engine_cannot_map_gets_a_question_and_no_branch(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, out, _ = run(
        capsys, "issue", "open", "please make everything faster", "--as", "alice", "--json"
    )
    assert code == 0 and json.loads(out)["outcome"] == "asked"
    code, out, _ = run(capsys, "issue", "show", "1", "--json")
    shown = json.loads(out)
    assert any("Reply" in c["body"] for c in shown["comments"])
    assert [e["step"] for e in shown["trajectory"]][-1] == "engine.clarify"
    assert "infrabot/" not in git(repo, "branch", "--list")


def test_an_unknown_command_gets_the_help_text(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    number = open_branch_pr(
        capsys,
        repo,
        {
            "infra/state/dns/x.example.com.yaml": (
                "kind: DnsRecord\nname: x.example.com\nowner: bob\nvalue: 127.0.0.1\nserver: dns1\n"
            )
        },
    )
    code, out, _ = run(capsys, "pr", "comment", str(number), "/destroy", "--as", "bob")
    assert code == 1 and "/apply" in out and "/plan" in out


def test_apply_needs_permission_and_an_approval(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, out, err = run(capsys, "issue", "open", SEED_REQUEST, "--as", "alice", "--json")
    assert code == 0, err
    number = json.loads(out)["pr"]
    code, out, _ = run(capsys, "pr", "comment", str(number), "/apply", "--as", "carol")
    assert code == 1 and "@carol has read permission" in out and "approval" in out
    code, out, _ = run(capsys, "pr", "comment", str(number), "/apply", "--as", "bob")
    assert code == 1 and "approval" in out and "@bob has" not in out
    assert not (repo / ".infrabot/estate").exists()
    steps = [
        e["step"] for e in json.loads(run(capsys, "issue", "show", "1", "--json")[1])["trajectory"]
    ]
    assert steps.count("apply.refused") == 2


def test_a_merge_while_another_apply_holds_the_lock_is_refused(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, out, err = run(capsys, "issue", "open", SEED_REQUEST, "--as", "alice", "--json")
    assert code == 0, err
    number = json.loads(out)["pr"]
    run(capsys, "pr", "review", str(number), "--approve", "--as", "bob")
    lock = EstateLock(repo / ".infrabot/ledger.db")
    lock.acquire(99, pid=os.getpid())  # another apply, alive, holds the estate
    head = git(repo, "rev-parse", "main")
    code, out, _ = run(capsys, "pr", "merge", str(number), "--as", "alice")
    assert code == 1 and "#99" in out
    assert git(repo, "rev-parse", "main") == head
    holder = lock.holder()
    assert holder is not None and holder.holder == 99  # the other apply keeps its lock
    lock.release(99)
    # The same PR, applied by another process (`infrabot serve` on an /apply while an
    # operator runs `infrabot pr apply`): the second one is refused, it does not re-enter.
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOR_PR, str(repo / ".infrabot/ledger.db"), str(number)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        for argv in (("comment", str(number), "/apply"), ("merge", str(number))):
            code, out, _ = run(capsys, "pr", *argv, "--as", "alice")
            assert code == 1 and "refused" in out, out
            assert f"PR #{number} is already being applied by process {other.pid}" in out
        assert git(repo, "rev-parse", "main") == head
        assert not (repo / ".infrabot/estate").exists()  # nothing was applied
    finally:
        other.communicate("")


HOLD_FOR_PR = """\
import sys
from pathlib import Path
from bot.ledger import EstateLock
with EstateLock(Path(sys.argv[1])).held(int(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_cli_errors_are_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    code, _, err = run(capsys, "pr", "show", "42")
    assert code == 2 and err.strip() == "infrabot: no issue or pull request #42"
    code, _, err = run(capsys, "issue", "open", "x", "--as", "mallory")
    assert code == 2 and "known users: alice, bob, carol" in err and "\n" not in err.strip()
    code, _, err = run(capsys, "issue", "open", "x")
    assert code == 2 and "--as" in err


RECORD = {
    "infra/state/dns/x.example.com.yaml": (
        "kind: DnsRecord\nname: x.example.com\nowner: bob\nvalue: 127.0.0.1\nserver: dns1\n"
    )
}


def test_plan_help_and_unlock_commands(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    number = open_branch_pr(capsys, repo, RECORD)
    code, out, _ = run(capsys, "pr", "comment", str(number), "/plan", "--as", "carol")
    assert code == 0 and "validation passed" in out and "dry-run successful" in out
    code, out, _ = run(capsys, "pr", "comment", str(number), "/help", "--as", "carol")
    assert code == 0 and "/apply" in out
    lock = EstateLock(repo / ".infrabot/ledger.db")
    lock.acquire(7)  # an apply that died without releasing (no pid recorded)
    code, out, _ = run(capsys, "pr", "comment", str(number), "/unlock", "--as", "carol")
    assert code == 1 and "write permission" in out
    assert lock.holder() is not None
    code, out, _ = run(capsys, "pr", "comment", str(number), "/unlock", "--as", "bob")
    assert code == 0 and "PR #7" in out
    assert lock.holder() is None


def test_a_reply_on_the_issue_resumes_the_work(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    request = SEED_REQUEST.replace("on pve1", "on pve9")
    code, out, _ = run(capsys, "issue", "open", request, "--as", "alice", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "asked"
    question = json.loads(run(capsys, "issue", "show", "1", "--json")[1])["comments"][0]["body"]
    assert "pve9" in question and "node:" in question
    code, out, _ = run(capsys, "issue", "comment", "1", "node: pve1", "--as", "alice")
    assert code == 0 and "opened PR #" in out
    assert "infrabot/1-" in git(repo, "branch", "--list")
    steps = [
        e["step"] for e in json.loads(run(capsys, "issue", "show", "1", "--json")[1])["trajectory"]
    ]
    assert steps.index("engine.clarify") < steps.index("ticket.replied") < steps.index("pr.opened")


def test_validate_and_plan_on_the_working_tree(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    assert run(capsys, "validate")[0] == 0
    for rel, text in RECORD.items():
        (repo / rel).write_text(text)
    code, out, _ = run(capsys, "plan", "--json")
    assert code == 0
    planned = json.loads(out)
    assert planned["status"] == "successful" and planned["hosts"] == ["dns1"]
    assert any("x.example.com" in t["diff"] for t in planned["tasks"])
    (repo / CONTAINER).write_text(GOOD_CONTAINER.replace("cores: 1", "cores: lots"))
    code, out, _ = run(capsys, "validate", "--json")
    assert code == 1
    finding = json.loads(out)["findings"][0]
    assert (finding["file"], finding["path"]) == (CONTAINER, "$.cores") and finding["line"]
    code, out, _ = run(capsys, "plan")
    assert code == 1 and "validation failed" in out and "$.cores" in out


def test_a_merge_is_refused_while_the_estate_it_would_apply_to_is_down(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    number = open_branch_pr(capsys, repo, RECORD)
    run(capsys, "pr", "review", str(number), "--approve", "--as", "alice")
    head = git(repo, "rev-parse", "main")
    code, out, _ = run(capsys, "pr", "merge", str(number), "--as", "alice")
    assert code == 1 and "infrabot estate up" in out
    assert git(repo, "rev-parse", "main") == head
    assert pr_json(capsys, number)["pull_request"]["state"] == "open"


@pytest.mark.parametrize(
    "upstream",
    ["http://10.77.0.10:8080/;internal", "http://10.77.0.10:8080/ return 200", 'http://a"b'],
)
def test_a_value_that_would_inject_nginx_directives_is_refused(
    capsys: pytest.CaptureFixture[str], repo: Path, upstream: str
) -> None:
    bad = GOOD_SITE.replace('"http://10.77.0.10:8080"', json.dumps(upstream))
    number = open_branch_pr(capsys, repo, {SITE: bad})
    body = pr_json(capsys, number)["pull_request"]["body"]
    assert "$.upstream" in body and "dry-run was not run" in body


def test_a_vhost_nginx_rejects_fails_the_dry_run_and_blocks_apply(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Valid desired state, but nginx -t on the rendered config fails (no such certificate):
    check mode alone would have called this change fine."""
    tls = GOOD_SITE + "tls:\n  certificate: /nonexistent/cert.pem\n  key: /nonexistent/key.pem\n"
    number = open_branch_pr(capsys, repo, {SITE: tls})
    pr = pr_json(capsys, number)
    body = pr["pull_request"]["body"]
    assert "Validation ✅ passed" in body
    assert "`nginx -t` on the rendered config FAILS" in body and "/nonexistent/cert.pem" in body
    assert {s["context"]: s["state"] for s in pr["statuses"]}["infrabot/dry-run"] == "failure"
    run(capsys, "pr", "review", str(number), "--approve", "--as", "alice")
    code, out, _ = run(capsys, "pr", "comment", str(number), "/apply", "--as", "alice")
    assert code == 1 and "dry-run" in out


def test_a_reader_that_leaves_early_is_no_internal_error(repo: Path) -> None:
    """`infrabot slo rules | head -1`: the pipe closes before the command writes; that is
    the reader's choice, not a bug to report (no "internal error", no crash log)."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the command writes a byte
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "slo", "rules"],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(writer)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
    assert not (repo / ".infrabot" / "crash.log").exists()
