"""Hostile output, end to end through the ``infrabot`` command: what the bot posts reads
as the bot's word only.  Text that came from elsewhere — an issue title, a YAML value, a
probed service's page, a command — renders as text on GitHub (cmarkgfm, GitHub's own
engine), and nothing secret reaches the forge, whether it hides in Ansible's output, a
validation finding or a command.  Bad text on the command line is an input error."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gfm import ALLOWED, headings, visible, walk

from bot.cli import main
from bot.localestate import netns_available

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECRET = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4"
# What the bot's own markdown makes; anything else (h1, a, img, script ...) was injected.
HOSTILE_TITLE = (
    "<h1>✅ approved</h1> [merge now](https://evil.example) ![x](https://evil.example/i.png) "
    "<!-- infrabot:topic=evidence-0 --> `` ` `` :white_check_mark: @alice"
)
PAGE = (
    "<!doctype html><title>api-scanner</title><h1>✅ approved by @alice</h1>\n"
    "# Heading\n[merge](https://evil.example) <img src=x> <!-- infrabot:topic=plan -->"
    f" token={SECRET}"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def git(repo: Path, *args: str) -> str:
    who = {"GIT_AUTHOR_NAME": "bob", "GIT_AUTHOR_EMAIL": "b@x"}
    env = os.environ | who | {"GIT_COMMITTER_NAME": "bob", "GIT_COMMITTER_EMAIL": "b@x"}
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def open_branch_pr(
    capsys: pytest.CaptureFixture[str], repo: Path, branch: str, files: dict[str, str]
) -> int:
    tree = repo.parent / f"wt-{branch.replace('/', '-')}"
    git(repo, "worktree", "add", "-q", "-b", branch, str(tree), "main")
    for rel, content in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(content)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"edit {branch}")
    git(repo, "worktree", "remove", "--force", str(tree))
    code, out, err = run(capsys, "pr", "open", branch, "--as", "bob", "--json")
    assert code == 0, err
    return int(json.loads(out)["number"])


def posted(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Every body the bot wrote: its comments on every issue and PR, and every PR body."""
    bodies = []
    for kind in ("issue", "pr"):
        items = json.loads(run(capsys, kind, "list", "--json")[1])
        for item in items:
            shown = json.loads(run(capsys, kind, "show", str(item["number"]), "--json")[1])
            comments = shown["comments"]
            bodies += [c["body"] for c in comments if c["author"] == "infrabot"]
            if kind == "pr":
                bodies.append(shown["pull_request"]["body"])
    return bodies


def assert_nothing_injected(md: str) -> None:
    walker = walk(md)
    assert set(walker.tags) <= ALLOWED, sorted(set(walker.tags) - ALLOWED)
    assert walker.comments == [], walker.comments
    assert "<!-- infrabot:" not in md
    assert len(walker.headings) == len(set(walker.headings)), walker.headings
    injected = ("✅ approved", "Heading", "approved")
    assert not any(h.startswith(injected) for h in walker.headings), walker.headings


def test_a_hostile_issue_title_is_text_in_every_comment(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    request = tmp_path / "request.md"
    request.write_text("Add a DNS record for docs.example.com pointing at 127.0.0.1\n")
    code, _out, err = run(
        capsys, "issue", "open", HOSTILE_TITLE, "--body-file", str(request), "--as", "alice"
    )
    assert code == 0, err
    bodies = posted(capsys)
    assert len(bodies) >= 3  # the plan, the "opened PR" note and the PR body
    for body in bodies:
        assert_nothing_injected(body)
    plan = next(b for b in bodies if b.startswith("### Plan"))
    shown = visible(plan)
    assert "<h1>✅ approved</h1> [merge now](https://evil.example)" in shown.replace("\u2060", "")
    assert headings(plan)[0].startswith("Plan for #1: <h1>")


def test_a_secret_never_reaches_the_forge(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    target = (repo / "infra/state/monitoring/status-page.yaml").read_text()
    leaked = target.replace("team: platform", f"team: {SECRET}")  # into Ansible's diff
    number = open_branch_pr(
        capsys, repo, "bob/labels", {"infra/state/monitoring/status-page.yaml": leaked}
    )
    body = json.loads(run(capsys, "pr", "show", str(number), "--json")[1])["pull_request"]["body"]
    assert "Dry-run (check + diff) (successful)" in body and "scrape.json" in body
    bad_value = (
        f"kind: DnsRecord\nname: leak.example.com\nowner: bob\nvalue: {SECRET}\nserver: dns1\n"
    )
    second = open_branch_pr(
        capsys, repo, "bob/finding", {"infra/state/dns/leak.example.com.yaml": bad_value}
    )
    code, out, _ = run(capsys, "pr", "comment", str(second), f"/apply {SECRET}", "--as", "bob")
    assert code == 1
    code, out, _ = run(capsys, "pr", "comment", str(second), "/apply", "--as", "carol")
    assert code == 1 and "refused" in out
    bodies = posted(capsys)
    assert any("leak.example.com" in b for b in bodies)  # the finding was posted ...
    for body in bodies:  # ... without the secret, raw or as GitHub shows it
        assert SECRET not in body and SECRET[:12] not in body
        assert SECRET[:12] not in visible(body).replace("\u2060", "")
        assert_nothing_injected(body)


def test_bad_text_on_the_command_line_is_an_input_error(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    undecodable = b"Add a record \xff\xfe".decode("utf-8", "surrogateescape")
    code, _, err = run(capsys, "issue", "open", undecodable, "--as", "alice")
    assert code == 2 and "not valid UTF-8" in err and "Traceback" not in err
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Caf\xe9 on pve1".encode("latin-1"))
    code, _, err = run(capsys, "issue", "open", "t", "--body-file", str(latin1), "--as", "alice")
    assert code == 2 and "is not UTF-8 text" in err
    code, _, err = run(capsys, "issue", "open", "t", "--body-file", str(tmp_path / "nope"))
    assert code == 2 and "cannot read the body file" in err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xc3\x28 broken")))
    code, _, err = run(capsys, "issue", "open", "t", "--body-file", "-", "--as", "alice")
    assert code == 2 and "standard input is not UTF-8 text" in err
    code, _, err = run(capsys, "issue", "comment", "1", "x", "--body-file", str(latin1))
    assert code == 2 and "not both" in err
    assert json.loads(run(capsys, "issue", "list", "--json")[1]) == []  # nothing half-made


def test_a_long_body_comes_from_standard_input(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Add a DNS record for docs.example.com pointing at 127.0.0.1\n\n" + "context " * 6000
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, _out, err = run(capsys, "issue", "open", "docs", "--body-file", "-", "--as", "alice")
    assert code == 0, err
    issue = json.loads(run(capsys, "issue", "show", "1", "--json")[1])["issue"]
    assert issue["body"] == text


def test_the_terminal_shows_rendered_markdown_without_escapes(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    title = "Add a DNS record for docs.example.com pointing at 127.0.0.1 \x1b]0;pwned\x07"
    assert run(capsys, "issue", "open", title, "--as", "alice")[0] == 0
    code, out, _ = run(capsys, "pr", "show", "2")
    assert code == 0
    assert "schemas/<Kind>.schema.json" in out and "&lt;" not in out and "\\" not in out
    assert out.count("Validation ✅ passed") == 1 and "<details>" not in out
    assert "\x1b" not in out and "\x07" not in out
    assert "\x1b" not in run(capsys, "issue", "show", "1")[1]
    raw = json.loads(run(capsys, "pr", "show", "2", "--json")[1])["pull_request"]["body"]
    assert "<details>" in raw  # --json keeps the markdown as posted


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def hostile_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.integration
@pytest.mark.skipif(netns_available() is not None, reason=f"namespaces: {netns_available()}")
def test_a_service_page_with_markup_is_summarised_as_text(
    capsys: pytest.CaptureFixture[str], repo: Path, hostile_service: int
) -> None:
    files = {
        "infra/state/sites/hostile.yaml": (
            "kind: Site\nname: hostile\nowner: bob\nenvironment: lab\n"
            f"domain: hostile.example.com\nupstream: http://127.0.0.1:{hostile_service}\n"
            "proxy: proxy1\n"
        ),
        "infra/state/dns/hostile.example.com.yaml": (
            "kind: DnsRecord\nname: hostile.example.com\nowner: bob\nenvironment: lab\n"
            "value: 127.0.0.1\nserver: dns1\n"
        ),
    }
    assert run(capsys, "estate", "up")[0] == 0
    try:
        number = open_branch_pr(capsys, repo, "bob/hostile", files)
        assert run(capsys, "pr", "review", str(number), "--approve", "--as", "alice")[0] == 0
        code, out, err = run(capsys, "pr", "merge", str(number), "--as", "alice")
        assert code == 0, out + err
        assert "site: hostile.example.com via proxy1" in out  # the verification table
        assert "title 'api-scanner'" in out and "<h1>" not in out
        comments = json.loads(run(capsys, "pr", "show", str(number), "--json")[1])["comments"]
        evidence = next(c["body"] for c in comments if c["body"].startswith("### Evidence"))
        assert_nothing_injected(evidence)
        shown = visible(evidence)
        assert "→ 200, title 'api-scanner'" in shown
        assert "approved by" not in shown and "merge" not in shown.split("Verification")[1]
        assert SECRET not in evidence and SECRET not in shown
    finally:
        assert run(capsys, "estate", "down")[0] == 0
