"""The same behaviour from every forge: local (SQLite + git refs), in-memory, and GitHub.

The GitHub forge runs over real HTTP against the test-only fake (``tests/fakes/github``),
whose every response is checked against GitHub's REST description.  People's acts
(opening issues, commenting, reviewing) go through ``world.people``: the local forge's
own extras, or alice/bob/carol's tokens on the fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from fakes.github import FakeGitHub
from github_world import GitHubPeople, github_forge

from bot.errors import InputError
from bot.forge.base import BOT_LOGIN, MAX_COMMENT, Forge, Permission, PullRequest
from bot.forge.fake import FakeForge
from bot.forge.local import LocalForge

USERS = {"alice": Permission.ADMIN, "bob": Permission.WRITE, "carol": Permission.READ}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _commit(repo: git.Repo, branch: str, name: str) -> str:
    """Commit a new file on ``branch`` (created from main when missing); returns the sha."""
    heads = [h.name for h in repo.heads]  # none yet: the first commit makes main
    if heads and branch not in heads:
        repo.create_head(branch, repo.heads.main.commit)
    if heads:
        repo.heads[branch].checkout()
    path = Path(repo.working_tree_dir or ".") / name
    path.write_text(name)
    repo.index.add([str(path)])
    actor = git.Actor("t", "t@example.com")
    sha = repo.index.commit(f"add {name}", author=actor, committer=actor).hexsha
    repo.heads.main.checkout()
    return sha


class World:
    """A forge, the people around it, and a way to move a branch and to merge."""

    def __init__(
        self,
        forge: Forge,
        people: LocalForge | FakeForge | GitHubPeople,
        push: Callable[[str], str],
        merge: Callable[[int, str], PullRequest],
    ) -> None:
        self.forge = forge
        self.people = people
        self.push = push
        self.merge = merge


def _merge(forge: Forge) -> Callable[[int, str], PullRequest]:
    """Merge the PR's current head, as the gate does once it has authorised it."""
    return lambda number, by: forge.merge(number, forge.pull_request(number).head_sha, by)


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.integration),
        "fake",
        pytest.param("github", marks=pytest.mark.integration),
    ]
)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeForge(USERS, clock=lambda: NOW)
        counter = iter(range(1, 1000))

        def push_fake(branch: str) -> str:
            sha = f"{next(counter):040x}"
            fake.set_branch(branch, sha)
            return sha

        push_fake("main")
        yield World(fake, fake, push_fake, _merge(fake))
        return
    if request.param == "github":
        hub = FakeGitHub(tmp_path / "github", {k: v.value for k, v in USERS.items()}).start()
        try:
            forge = github_forge(hub)
            people = GitHubPeople(hub, forge, tmp_path / "clone")
            yield World(forge, people, people.push, _merge(forge))
        finally:
            hub.stop()
        assert hub.errors == [], "the fake sent responses GitHub could not have sent"
        return
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    _commit(repo, "main", "README")
    files = iter(range(1, 1000))
    local = LocalForge(tmp_path / "forge.db", USERS, tmp_path / "repo", clock=lambda: NOW)
    yield World(
        local, local, lambda branch: _commit(repo, branch, f"f{next(files)}"), _merge(local)
    )


def _open(w: World, branch: str = "feature", author: str = BOT_LOGIN) -> int:
    w.push(branch)
    issue = w.people.create_issue("Add a site", "please", "alice")
    opener = w.forge if author == BOT_LOGIN else w.people  # people open theirs in the UI
    pr = opener.open_pull_request(
        branch=branch, base="main", title="Add site", body="b", issue=issue.number, author=author
    )
    return pr.number


def test_issues_and_prs_share_one_number_space(world: World) -> None:
    first = world.people.create_issue("one", "", "alice")
    pr = _open(world)
    assert first.number == 1
    assert pr == 3  # issue 2 was opened by _open, then the PR
    assert world.forge.issue(pr).is_pull_request
    assert not world.forge.issue(first.number).is_pull_request


def test_unknown_number_is_a_clear_input_error(world: World) -> None:
    with pytest.raises(InputError, match=r"no issue or pull request #42"):
        world.forge.issue(42)
    with pytest.raises(InputError, match=r"no issue or pull request #42"):
        world.forge.comments(42)


def test_an_issue_is_not_a_pull_request(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    with pytest.raises(InputError, match="is an issue, not a pull request"):
        world.forge.pull_request(issue.number)


def test_ensure_comment_edits_the_bots_comment_in_place(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    first = world.forge.ensure_comment(issue.number, "plan", "draft 1")
    second = world.forge.ensure_comment(issue.number, "plan", "draft 2")
    other = world.forge.ensure_comment(issue.number, "clarify", "a question")
    comments = world.forge.comments(issue.number)
    assert [c.body for c in comments] == ["draft 2", "a question"]
    assert first.id == second.id != other.id
    assert comments[0].topic == "plan" and comments[0].author == BOT_LOGIN


def test_a_pasted_marker_does_not_capture_the_bots_comment(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    world.people.add_comment(issue.number, "<!-- infrabot:topic=plan -->\nmine now", "carol")
    world.forge.ensure_comment(issue.number, "plan", "the real plan")
    bodies = [(c.author, c.body) for c in world.forge.comments(issue.number)]
    assert bodies == [("carol", "mine now"), (BOT_LOGIN, "the real plan")]


@pytest.mark.parametrize("topic", ["", "has space", "x" * 101, "-leading", "a>b"])
def test_bad_topics_are_refused(world: World, topic: str) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    with pytest.raises(InputError, match="comment topic"):
        world.forge.ensure_comment(issue.number, topic, "x")


def test_a_persons_comment_is_bounded_like_github(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    # Locally the forge refuses it; on GitHub, GitHub itself does (422).
    with pytest.raises(Exception, match=rf"(the limit is|maximum is) {MAX_COMMENT}"):
        world.people.add_comment(issue.number, "x" * (MAX_COMMENT + 1), "bob")
    assert world.forge.comments(issue.number) == []


def test_the_bots_long_comment_is_cut_keeping_its_summary_and_its_end(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    body = "### Summary\n\n" + "log line\n" * 20000 + "### What failed\n\n- task x\n"
    world.forge.ensure_comment(issue.number, "plan", body)
    (comment,) = world.forge.comments(issue.number)
    assert len(comment.body) < MAX_COMMENT
    assert comment.body.startswith("### Summary") and comment.body.endswith("- task x\n")
    assert "characters cut here" in comment.body


SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2"


def test_nothing_the_bot_posts_carries_a_secret(world: World) -> None:
    number = _open(world)
    world.forge.ensure_comment(number, "plan", f"token: {SECRET}")
    world.forge.update_pull_request(number, body=f"the key is {SECRET}")
    again = world.forge.open_pull_request(
        branch="feature",
        base="main",
        title=f"t {SECRET}",
        body=SECRET,
        issue=None,
        author=BOT_LOGIN,
    )
    world.forge.close_issue(1, f"closing; password={SECRET}")
    texts = [c.body for n in (1, number) for c in world.forge.comments(n)]
    ticket = world.forge.create_issue(f"Reconcile {SECRET}", f"drift: {SECRET}", BOT_LOGIN)
    texts += [again.body, again.title, world.forge.pull_request(number).body]
    texts += [ticket.title, ticket.body, world.forge.issue(ticket.number).body]
    assert texts and all(SECRET not in t and "A1b2C3d4" not in t for t in texts), texts


def test_a_marker_inside_the_bots_body_is_not_a_marker(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    world.forge.ensure_comment(issue.number, "plan", "`<!-- infrabot:topic=evidence-x -->`")
    (comment,) = world.forge.comments(issue.number)
    assert comment.topic == "plan" and "<!-- infrabot:topic" not in comment.body


def test_open_pull_request_is_idempotent_per_branch(world: World) -> None:
    number = _open(world)
    again = world.forge.open_pull_request(
        branch="feature", base="main", title="New title", body="new", issue=None, author=BOT_LOGIN
    )
    assert again.number == number
    assert (again.title, again.body, again.issue) == ("New title", "new", 1)
    assert len(world.people.list_pull_requests()) == 1


def test_head_follows_the_branch_and_reviews_record_the_head(world: World) -> None:
    number = _open(world)
    first_head = world.forge.pull_request(number).head_sha
    world.people.add_review(number, "bob", "approved")
    assert world.forge.pull_request(number).approvals() == ("bob",)
    new_head = world.push("feature")
    pr = world.forge.pull_request(number)
    assert pr.head_sha == new_head != first_head
    assert pr.reviews[0].commit_sha == first_head
    assert pr.approvals() == ()  # the approval was for the old head


def test_you_cannot_approve_your_own_pull_request(world: World) -> None:
    number = _open(world, author="bob")
    with pytest.raises(InputError, match="you cannot approve your own pull request"):
        world.people.add_review(number, "bob", "approved")
    world.people.add_review(number, "bob", "commented")
    assert world.forge.pull_request(number).approvals() == ()


def test_a_later_change_request_withdraws_an_approval(world: World) -> None:
    number = _open(world)
    world.people.add_review(number, "bob", "approved")
    world.people.add_review(number, "alice", "approved")
    world.people.add_review(number, "bob", "commented")
    world.people.add_review(number, "alice", "changes_requested")
    assert world.forge.pull_request(number).approvals() == ("bob",)


def test_statuses_are_set_not_appended(world: World) -> None:
    abc, other = world.push("a"), world.push("b")
    world.forge.set_status(abc, "infrabot/validate", "pending", "running")
    world.forge.set_status(abc, "infrabot/validate", "success", "green")
    world.forge.set_status(abc, "infrabot/dryrun", "failure", "2 hosts failed")
    world.forge.set_status(other, "infrabot/validate", "error", "crashed")
    got = [(s.context, s.state) for s in world.forge.statuses(abc)]
    assert got == [("infrabot/dryrun", "failure"), ("infrabot/validate", "success")]


def test_permissions_come_from_the_user_table(world: World) -> None:
    assert world.forge.permission("alice") is Permission.ADMIN
    assert world.forge.permission("carol") is Permission.READ
    assert world.forge.permission("mallory") is Permission.NONE
    assert Permission.ADMIN.at_least(Permission.WRITE)
    assert not Permission.READ.at_least(Permission.WRITE)


def test_close_issue_with_a_comment_is_idempotent(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    world.forge.close_issue(issue.number, "Applied in #3.")
    world.forge.close_issue(issue.number, "Applied in #3.")
    assert world.forge.issue(issue.number).state == "closed"
    assert [c.body for c in world.forge.comments(issue.number)] == ["Applied in #3."]
    assert world.people.list_issues("open") == []


def test_labels_are_added_once_and_removed(world: World) -> None:
    issue = world.people.create_issue("t", "b", "bob")
    world.forge.add_labels(issue.number, "alert", "needs-human")
    world.forge.add_labels(issue.number, "needs-human")
    assert sorted(world.forge.issue(issue.number).labels) == ["alert", "needs-human"]
    world.forge.remove_label(issue.number, "needs-human")
    world.forge.remove_label(issue.number, "never-there")
    assert world.forge.issue(issue.number).labels == ("alert",)


def test_merge_then_no_more_reviews_and_head_is_frozen(world: World) -> None:
    number = _open(world)
    head = world.forge.pull_request(number).head_sha
    merged = world.merge(number, "alice")
    assert merged.state == "merged" and merged.merge_sha and merged.head_sha == head
    with pytest.raises(InputError, match="is merged: it cannot be merged"):
        world.merge(number, "alice")
    world.push("feature")
    assert world.forge.pull_request(number).head_sha == head
    assert world.forge.pull_request(number).merge_sha == merged.merge_sha
    with pytest.raises(InputError, match="is merged: it cannot be reviewed"):
        world.people.add_review(number, "bob", "approved")
    assert [p.number for p in world.people.list_pull_requests("merged")] == [number]


def test_the_merged_pull_request_is_found_by_its_merge_commit(world: World) -> None:
    number = _open(world)
    head = world.forge.pull_request(number).head_sha
    assert world.forge.merged_pull_request(head) is None  # open: its head is no merge
    merged = world.merge(number, "alice")
    assert merged.merge_sha is not None
    found = world.forge.merged_pull_request(merged.merge_sha)
    assert found is not None and (found.number, found.state) == (number, "merged")
    assert found.merged_by is not None and not found.fork
    assert world.forge.merged_pull_request(head) is None


def test_merge_takes_only_the_expected_head(world: World) -> None:
    number = _open(world)
    approved = world.forge.pull_request(number).head_sha
    world.push("feature")  # a commit pushed after the approval
    with pytest.raises(InputError, match="nothing was merged"):
        world.forge.merge(number, approved, "alice")
    pr = world.forge.pull_request(number)
    assert pr.state == "open" and pr.merge_sha is None


def test_a_dismissed_review_neither_approves_nor_blocks(world: World) -> None:
    number = _open(world)
    world.people.add_review(number, "bob", "approved")
    world.people.add_review(number, "carol", "changes_requested")
    world.people.dismiss_review(number, "bob", "alice")
    world.people.dismiss_review(number, "carol", "alice")
    pr = world.forge.pull_request(number)
    assert pr.approvals() == ()
    assert {r.author: r.state for r in pr.latest_reviews()} == {
        "bob": "dismissed",
        "carol": "dismissed",
    }
    with pytest.raises(InputError, match="no review on"):
        world.people.dismiss_review(number, "bob", "alice")


def test_update_pull_request_changes_the_body(world: World) -> None:
    number = _open(world)
    assert world.forge.update_pull_request(number, body="checks: green").body == "checks: green"
    assert world.forge.pull_request(number).body == "checks: green"
