"""The local forge: issues, pull requests, comments, reviews and statuses in SQLite.

The embedded default: no account, no network.  The forge changes the git repository in
one place only, ``merge``, which merges exactly the expected head commit (GitHub's merge
API has the same ``sha`` guard) into the person's checkout.  It *reads* branch tips (ref
files, no subprocess) so that a pull request's ``head_sha`` follows its branch, as on
GitHub: an approval or a dry-run of an older head can never pass for the current one.
``refresh_head`` sets them explicitly.

Every call opens a short-lived connection (WAL, busy timeout) and runs in one
transaction; writes take ``BEGIN IMMEDIATE`` so a read-modify-write such as
``ensure_comment`` is atomic across processes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import git

from bot.errors import InputError
from bot.forge.base import (
    BOT_LOGIN,
    Comment,
    Issue,
    Permission,
    PullRequest,
    Review,
    ReviewState,
    Status,
    StatusState,
    check_body,
    check_review,
    not_found,
    posted,
    posted_title,
    split_marker,
    with_marker,
)
from bot.gitrepo import GitRepo
from bot.ledger.sqlite import Database

SCHEMA_VERSION = 1
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS items (
  number INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('issue', 'pr')),
  title TEXT NOT NULL, body TEXT NOT NULL, author TEXT NOT NULL, state TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
  head_branch TEXT, base_branch TEXT, head_sha TEXT, base_sha TEXT,
  issue INTEGER, merge_sha TEXT, merged_by TEXT
)
    """,
    """
CREATE TABLE IF NOT EXISTS comments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number INTEGER NOT NULL REFERENCES items(number),
  author TEXT NOT NULL, body TEXT NOT NULL, topic TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL
)
    """,
    """
CREATE INDEX IF NOT EXISTS comments_by_topic ON comments (number, author, topic)
    """,
    """
CREATE TABLE IF NOT EXISTS reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number INTEGER NOT NULL REFERENCES items(number),
  author TEXT NOT NULL, state TEXT NOT NULL, commit_sha TEXT NOT NULL, created_at TEXT NOT NULL
)
    """,
    """
CREATE TABLE IF NOT EXISTS statuses (
  sha TEXT NOT NULL, context TEXT NOT NULL, state TEXT NOT NULL, description TEXT NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY (sha, context)
)
    """,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LocalForge:
    def __init__(
        self,
        db_path: Path,
        users: Mapping[str, Permission | str],
        repo_path: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.db_path = db_path
        self.users = {name: Permission(level) for name, level in users.items()}
        self.repo_path = repo_path
        self.clock = clock
        self.db = Database(db_path, what="forge database", schema=_SCHEMA, version=SCHEMA_VERSION)

    # -- storage ---------------------------------------------------------------------

    def _now(self) -> str:
        return self.clock().isoformat()

    def _item(self, conn: sqlite3.Connection, number: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM items WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise not_found(number)
        return row  # type: ignore[no-any-return]

    def _pr_row(self, conn: sqlite3.Connection, number: int) -> sqlite3.Row:
        row = self._item(conn, number)
        if row["kind"] != "pr":
            raise InputError(f"#{number} is an issue, not a pull request")
        return row

    def _check_user(self, user: str) -> None:
        if user != BOT_LOGIN and user not in self.users:
            known = ", ".join(sorted(self.users)) or "(none configured in infrabot.yaml)"
            raise InputError(f"unknown user {user!r}; known users: {known}")

    # -- git refs (read only) --------------------------------------------------------

    def _tip(self, branch: str) -> str | None:
        if not _BRANCH.fullmatch(branch) or ".." in branch:
            return None
        try:
            repo = git.Repo(self.repo_path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None
        try:
            return str(git.SymbolicReference.dereference_recursive(repo, f"refs/heads/{branch}"))
        except (ValueError, OSError):
            return None
        finally:
            repo.close()

    def _need_tip(self, branch: str) -> str:
        sha = self._tip(branch)
        if sha is None:
            raise InputError(f"no branch {branch!r} in the git repository at {self.repo_path}")
        return sha

    def _sync_head(self, conn: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
        """Follow the branch tips of an open pull request (what GitHub does on a push)."""
        if row["state"] != "open":
            return row
        head = self._tip(row["head_branch"]) or row["head_sha"]
        base = self._tip(row["base_branch"]) or row["base_sha"]
        if (head, base) == (row["head_sha"], row["base_sha"]):
            return row
        conn.execute(
            "UPDATE items SET head_sha = ?, base_sha = ? WHERE number = ?",
            (head, base, row["number"]),
        )
        return self._item(conn, row["number"])

    # -- conversions -----------------------------------------------------------------

    @staticmethod
    def _issue(row: sqlite3.Row) -> Issue:
        pr = row["kind"] == "pr"
        return Issue(
            number=row["number"],
            title=row["title"],
            body=row["body"],
            author=row["author"],
            state="open" if row["state"] == "open" else "closed",
            labels=tuple(json.loads(row["labels"])),
            created_at=datetime.fromisoformat(row["created_at"]),
            is_pull_request=pr,
        )

    @staticmethod
    def _comment(row: sqlite3.Row) -> Comment:
        topic, body = split_marker(row["body"])
        return Comment(
            id=row["id"],
            number=row["number"],
            author=row["author"],
            body=body,
            created_at=datetime.fromisoformat(row["created_at"]),
            topic=topic,
        )

    def _pull(self, conn: sqlite3.Connection, row: sqlite3.Row) -> PullRequest:
        reviews = conn.execute(
            "SELECT * FROM reviews WHERE number = ? ORDER BY id", (row["number"],)
        ).fetchall()
        return PullRequest(
            number=row["number"],
            title=row["title"],
            body=row["body"],
            author=row["author"],
            head_branch=row["head_branch"],
            base_branch=row["base_branch"],
            head_sha=row["head_sha"],
            base_sha=row["base_sha"],
            state=row["state"],
            issue=row["issue"],
            merge_sha=row["merge_sha"],
            merged_by=row["merged_by"],
            reviews=tuple(
                Review(
                    author=r["author"],
                    state=r["state"],
                    commit_sha=r["commit_sha"],
                    created_at=datetime.fromisoformat(r["created_at"]),
                )
                for r in reviews
            ),
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    # -- the Forge protocol ----------------------------------------------------------

    def issue(self, number: int) -> Issue:
        with self.db.transaction() as conn:
            return self._issue(self._item(conn, number))

    def pull_request(self, number: int) -> PullRequest:
        with self.db.transaction(write=True) as conn:
            return self._pull(conn, self._sync_head(conn, self._pr_row(conn, number)))

    def comments(self, number: int) -> list[Comment]:
        with self.db.transaction() as conn:
            self._item(conn, number)
            rows = conn.execute(
                "SELECT * FROM comments WHERE number = ? ORDER BY id", (number,)
            ).fetchall()
            return [self._comment(r) for r in rows]

    def ensure_comment(
        self, number: int, topic: str, body: str, *, author: str = BOT_LOGIN
    ) -> Comment:
        raw = with_marker(topic, body)
        with self.db.transaction(write=True) as conn:
            self._item(conn, number)
            row = conn.execute(
                "SELECT id, body FROM comments WHERE number = ? AND author = ? AND topic = ? "
                "ORDER BY id LIMIT 1",
                (number, author, topic),
            ).fetchone()
            if row is None:
                return self._insert_comment(conn, number, raw, author, topic)
            if row["body"] != raw:
                conn.execute(
                    "UPDATE comments SET body = ?, updated_at = ? WHERE id = ?",
                    (raw, self._now(), row["id"]),
                )
            return self._comment(
                conn.execute("SELECT * FROM comments WHERE id = ?", (row["id"],)).fetchone()
            )

    def _insert_comment(
        self, conn: sqlite3.Connection, number: int, raw: str, author: str, topic: str | None
    ) -> Comment:
        now = self._now()
        cur = conn.execute(
            "INSERT INTO comments (number, author, body, topic, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (number, author, raw, topic, now, now),
        )
        row = conn.execute("SELECT * FROM comments WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._comment(row)

    def open_pull_request(
        self, *, branch: str, base: str, title: str, body: str, issue: int | None, author: str
    ) -> PullRequest:
        if branch == base:
            raise InputError(f"a pull request needs a branch other than its base {base!r}")
        if not title.strip():
            raise InputError("a pull request needs a title")
        body, title = posted(body), posted_title(title)
        head_sha, base_sha = self._need_tip(branch), self._need_tip(base)
        with self.db.transaction(write=True) as conn:
            if issue is not None:
                self._item(conn, issue)
            row = conn.execute(
                "SELECT * FROM items WHERE kind = 'pr' AND state = 'open' AND head_branch = ?",
                (branch,),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE items SET title = ?, body = ?, head_sha = ?, base_sha = ?, "
                    "issue = COALESCE(?, issue) WHERE number = ?",
                    (title, body, head_sha, base_sha, issue, row["number"]),
                )
                return self._pull(conn, self._item(conn, row["number"]))
            cur = conn.execute(
                "INSERT INTO items (kind, title, body, author, state, created_at, head_branch, "
                "base_branch, head_sha, base_sha, issue) "
                "VALUES ('pr', ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                (title, body, author, self._now(), branch, base, head_sha, base_sha, issue),
            )
            return self._pull(conn, self._item(conn, int(cur.lastrowid or 0)))

    def update_pull_request(self, number: int, *, body: str) -> PullRequest:
        body = posted(body)
        with self.db.transaction(write=True) as conn:
            self._pr_row(conn, number)
            conn.execute("UPDATE items SET body = ? WHERE number = ?", (body, number))
            return self._pull(conn, self._sync_head(conn, self._item(conn, number)))

    def set_status(self, sha: str, context: str, state: StatusState, description: str) -> None:
        status = Status(sha=sha, context=context, state=state, description=description)
        with self.db.transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO statuses (sha, context, state, description, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha, context) DO UPDATE SET "
                "state = excluded.state, description = excluded.description, "
                "updated_at = excluded.updated_at",
                (status.sha, status.context, status.state, status.description, self._now()),
            )

    def statuses(self, sha: str) -> list[Status]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT sha, context, state, description FROM statuses WHERE sha = ? "
                "ORDER BY context",
                (sha,),
            ).fetchall()
            return [Status.model_validate(dict(r)) for r in rows]

    def permission(self, user: str) -> Permission:
        return self.users.get(user, Permission.NONE)

    def close_issue(self, number: int, comment: str | None = None) -> None:
        if comment is not None:
            self.ensure_comment(number, "closed", comment)
        with self.db.transaction(write=True) as conn:
            self._item(conn, number)
            conn.execute(
                "UPDATE items SET state = 'closed' WHERE number = ? AND state = 'open'", (number,)
            )

    def add_labels(self, number: int, *labels: str) -> None:
        self._relabel(number, lambda had: [*had, *(x for x in labels if x not in had)])

    def remove_label(self, number: int, label: str) -> None:
        self._relabel(number, lambda had: [x for x in had if x != label])

    def _relabel(self, number: int, change: Callable[[list[str]], list[str]]) -> None:
        with self.db.transaction(write=True) as conn:
            row = self._item(conn, number)
            labels = change(list(json.loads(row["labels"])))
            conn.execute(
                "UPDATE items SET labels = ? WHERE number = ?", (json.dumps(labels), number)
            )

    # -- what the CLI adds (not in the protocol) --------------------------------------

    def create_issue(
        self, title: str, body: str, author: str, *, labels: Sequence[str] = ()
    ) -> Issue:
        self._check_user(author)
        if not title.strip():
            raise InputError("an issue needs a title")
        if author == BOT_LOGIN:  # the bot opens tickets too: what it posts is redacted
            title, body = posted_title(title), posted(body)
        check_body(body)
        with self.db.transaction(write=True) as conn:
            cur = conn.execute(
                "INSERT INTO items (kind, title, body, author, state, labels, created_at) "
                "VALUES ('issue', ?, ?, ?, 'open', ?, ?)",
                (title, body, author, json.dumps(list(labels)), self._now()),
            )
            return self._issue(self._item(conn, int(cur.lastrowid or 0)))

    def list_issues(self, state: Literal["open", "closed"] | None = None) -> list[Issue]:
        with self.db.transaction() as conn:
            rows = self._list(conn, "issue", state)
            return [self._issue(r) for r in rows]

    def list_pull_requests(
        self, state: Literal["open", "closed", "merged"] | None = None
    ) -> list[PullRequest]:
        with self.db.transaction(write=True) as conn:
            rows = [self._sync_head(conn, r) for r in self._list(conn, "pr", None)]
            return [self._pull(conn, r) for r in rows if state is None or r["state"] == state]

    @staticmethod
    def _list(conn: sqlite3.Connection, kind: str, state: str | None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM items WHERE kind = ?" + (" AND state = ?" if state else "")
        args = (kind, state) if state else (kind,)
        return conn.execute(sql + " ORDER BY number", args).fetchall()

    def add_comment(self, number: int, body: str, author: str) -> Comment:
        """A person's comment (no topic marker is added; one they typed is kept as text)."""
        self._check_user(author)
        if not body.strip():
            raise InputError("a comment needs a body")
        check_body(body)
        with self.db.transaction(write=True) as conn:
            self._item(conn, number)
            return self._insert_comment(conn, number, body, author, None)

    def add_review(self, number: int, author: str, state: ReviewState) -> Review:
        self._check_user(author)
        with self.db.transaction(write=True) as conn:
            pr = self._pull(conn, self._sync_head(conn, self._pr_row(conn, number)))
            check_review(pr, author, state)
            review = Review(
                author=author, state=state, commit_sha=pr.head_sha, created_at=self.clock()
            )
            conn.execute(
                "INSERT INTO reviews (number, author, state, commit_sha, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (number, author, review.state, review.commit_sha, review.created_at.isoformat()),
            )
            return review

    def mark_merged(self, number: int, merge_sha: str, by: str) -> PullRequest:
        with self.db.transaction(write=True) as conn:
            row = self._pr_row(conn, number)
            if row["state"] == "merged" and row["merge_sha"] == merge_sha:
                return self._pull(conn, row)
            if row["state"] != "open":
                raise InputError(f"pull request #{number} is {row['state']}: it cannot be merged")
            conn.execute(
                "UPDATE items SET state = 'merged', merge_sha = ?, merged_by = ? WHERE number = ?",
                (merge_sha, by, number),
            )
            return self._pull(conn, self._item(conn, number))

    def merged_pull_request(self, sha: str) -> PullRequest | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM items WHERE kind = 'pr' AND state = 'merged' AND merge_sha = ?",
                (sha,),
            ).fetchone()
            return self._pull(conn, row) if row else None

    def merge(self, number: int, expected_head_sha: str, by: str) -> PullRequest:
        """Merge exactly ``expected_head_sha``: refused if the branch moved since it was
        authorised, so a commit pushed after the approval never lands unreviewed."""
        pr = self.pull_request(number)
        if pr.state != "open":
            raise InputError(f"pull request #{number} is {pr.state}: it cannot be merged")
        if pr.head_sha != expected_head_sha:
            raise InputError(
                f"the head of #{number} moved from {expected_head_sha[:7]} to "
                f"{pr.head_sha[:7]} since it was authorised: nothing was merged; "
                "review the new head and try again"
            )
        sha = GitRepo(self.repo_path).merge(
            expected_head_sha, pr.base_branch, f"Merge PR #{number}: {pr.title}", by
        )
        return self.mark_merged(number, sha, by)

    def dismiss_review(self, number: int, reviewer: str, by: str) -> Review:
        """Dismiss ``reviewer``'s latest decisive review (as on GitHub: needs write)."""
        self._check_user(by)
        if not self.permission(by).at_least(Permission.WRITE):
            raise InputError(f"@{by} needs write permission to dismiss a review")
        pr = self.pull_request(number)
        latest = {r.author: r for r in pr.latest_reviews()}
        if reviewer not in latest or latest[reviewer].state == "dismissed":
            raise InputError(f"@{reviewer} has no review on #{number} to dismiss")
        with self.db.transaction(write=True) as conn:
            review = Review(
                author=reviewer,
                state="dismissed",
                commit_sha=latest[reviewer].commit_sha,
                created_at=self.clock(),
            )
            conn.execute(
                "INSERT INTO reviews (number, author, state, commit_sha, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (number, reviewer, "dismissed", review.commit_sha, review.created_at.isoformat()),
            )
            return review

    def refresh_head(self, number: int, head_sha: str, base_sha: str) -> PullRequest:
        with self.db.transaction(write=True) as conn:
            self._pr_row(conn, number)
            conn.execute(
                "UPDATE items SET head_sha = ?, base_sha = ? WHERE number = ?",
                (head_sha, base_sha, number),
            )
            return self._pull(conn, self._item(conn, number))
