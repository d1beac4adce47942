"""The git edge: branches, commits, trees and merges, through GitPython.

Work on a branch happens in a temporary worktree, so the person's checkout is never
touched until a merge, and a failed edit leaves no branch behind.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import git

from bot.errors import InfrabotError


class GitRepo:
    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise InfrabotError(
                f"{path} is not inside a git repository: run infrabot in a clone of your "
                "infrastructure repository, or pass --repo PATH"
            ) from exc
        self.path = Path(self.repo.working_tree_dir or path)

    def sha(self, ref: str) -> str:
        try:
            return self.repo.rev_parse(ref).hexsha
        except (git.BadName, ValueError) as exc:
            raise InfrabotError(f"no such git ref {ref!r}") from exc

    def branch_exists(self, name: str) -> bool:
        return name in [h.name for h in self.repo.heads]

    def changed_files(self, base: str, head: str) -> list[str]:
        out = self.repo.git.diff("--name-only", f"{base}...{head}")
        return [line for line in out.splitlines() if line]

    def diff(self, base: str, head: str) -> str:
        return str(self.repo.git.diff(f"{base}...{head}"))

    def diff_stat(self, base: str, head: str) -> str:
        return str(self.repo.git.diff("--stat", f"{base}...{head}"))

    def export(self, rev: str, dest: Path) -> Path:
        """Write the tree of ``rev`` into ``dest`` (no .git): what a checkout would hold."""
        buf = io.BytesIO()
        self.repo.archive(buf, treeish=rev, format="tar")
        buf.seek(0)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter=_keep_links)
        return dest

    def blob_ids(self, rev: str | None, under: str) -> dict[str, str] | None:
        """Git's blob id of each regular file under ``under`` (repo-relative posix paths):
        of the tree of ``rev``, or of the working tree when ``rev`` is None (the index's
        ids, less the files that differ from it; untracked files are left out).  One or
        two git commands instead of reading and hashing every file (docs/adr/0018).

        None when git may write a file other than byte for byte (any ``.gitattributes``,
        an attributes file, ``core.autocrlf``): then a file's bytes need not be its blob,
        and the caller hashes what it reads."""
        if self._may_convert():
            return None
        if rev is None:
            # -v tags each entry: "H" is an ordinary one; an assume-unchanged ("h") or
            # skip-worktree ("S") file may differ from the index without diff-files saying so
            listing = self.repo.git.ls_files("-s", "-v", "-z", "--full-name")
            entries = [_index_entry(e) for e in listing.split("\0") if e]
            dirty = set(self.repo.git.diff_files("--name-only", "-z").split("\0"))
        else:
            listing = self.repo.git.ls_tree("-r", "-z", "--full-tree", self.sha(rev))
            entries = [_tree_entry(e) for e in listing.split("\0") if e]
            dirty = set()
        ids: dict[str, str] = {}
        prefix = under.rstrip("/") + "/"
        for path, blob in entries:
            if path.rpartition("/")[2] == ".gitattributes":
                return None
            if blob and path.startswith(prefix) and path not in dirty:
                ids[path] = blob
        return ids

    def _may_convert(self) -> bool:
        """Whether git's attributes or config could make a checked-out or archived file
        differ from its blob (line endings, filters, export-subst)."""
        config = self.repo.config_reader()
        autocrlf = str(config.get_value("core", "autocrlf", "false")).lower()
        attributes = str(config.get_value("core", "attributesfile", ""))
        xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        info = Path(self.repo.git_dir) / "info" / "attributes"
        return (
            autocrlf not in ("false", "input")
            or bool(attributes)
            or info.is_file()
            or (xdg / "git" / "attributes").is_file()
        )

    @contextmanager
    def _worktree(self, base: str, scratch: Path) -> Iterator[Path]:
        scratch.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="wt-", dir=scratch))
        self.repo.git.worktree("add", "--detach", str(path), base)
        try:
            yield path
        finally:
            self.repo.git.worktree("remove", "--force", str(path))
            shutil.rmtree(path, ignore_errors=True)

    def commit_on_branch(
        self,
        branch: str,
        base: str,
        edit: Callable[[Path], list[str]],
        message: str,
        author: str,
        scratch: Path,
    ) -> str | None:
        """Run ``edit`` in a worktree of ``base``, commit what it wrote to ``branch``.

        Returns the new commit, or None when the edit changed nothing.  The branch is
        created (or moved) only after the commit exists.
        """
        with self._worktree(base, scratch) as tree:
            paths = edit(tree)
            wt = git.Repo(tree)
            wt.git.add("--all", "--", *paths) if paths else None
            if not wt.git.status("--porcelain"):
                return None
            actor = git.Actor(author, f"{author}@infrabot.local")
            commit = wt.index.commit(message, author=actor, committer=actor)
            self.repo.git.branch("--force", branch, commit.hexsha)
            return commit.hexsha

    def revert_on_branch(
        self, branch: str, base: str, commit: str, author: str, scratch: Path
    ) -> str:
        with self._worktree(base, scratch) as tree:
            wt = git.Repo(tree)
            env = _identity(author)
            args = ["--no-edit"] + (
                ["-m", "1"] if len(self.repo.commit(commit).parents) > 1 else []
            )
            with wt.git.custom_environment(**env):
                wt.git.revert(*args, commit)
            sha = wt.head.commit.hexsha
            self.repo.git.branch("--force", branch, sha)
            return sha

    def tree_of(self, rev: str) -> str:
        return self.repo.commit(self.sha(rev)).tree.hexsha

    def merge_result(self, base: str, head: str, message: str) -> str | None:
        """A commit whose tree is ``head`` merged into ``base`` (what merging would produce,
        GitHub's ``refs/pull/N/merge``), made without touching any checkout; None when the
        two do not merge cleanly."""
        try:
            tree = self.repo.git.merge_tree("--write-tree", "--no-messages", base, head)
        except git.GitCommandError:
            return None  # exit status 1: conflicts
        env = _identity("infrabot")
        with self.repo.git.custom_environment(**env):
            return str(
                self.repo.git.commit_tree(tree.split()[0], "-p", base, "-p", head, "-m", message)
            )

    def merge_base(self, a: str, b: str) -> str | None:
        try:
            return str(self.repo.git.merge_base(a, b)).strip() or None
        except git.GitCommandError:
            return None

    def authors_since(self, base: str, head: str) -> set[str]:
        """Names of the authors of the commits on ``head`` that ``base`` does not have."""
        out = self.repo.git.log("--format=%an", f"{base}..{head}")
        return {line for line in out.splitlines() if line}

    def keep(self, ref: str, sha: str) -> None:
        """Point ``ref`` (outside refs/heads) at ``sha`` so git never collects it."""
        self.repo.git.update_ref(ref, sha)

    def merge(self, sha: str, into: str, message: str, author: str) -> str:
        """Merge exactly the commit ``sha`` into ``into`` in the person's checkout (which must
        be on ``into`` and clean).  A commit, never a branch name: whatever was pushed to the
        branch after ``sha`` was authorised is not merged."""
        if self.repo.head.is_detached or self.repo.active_branch.name != into:
            raise InfrabotError(f"check out {into} in {self.path} before merging")
        if self.repo.is_dirty(untracked_files=False):
            raise InfrabotError(f"{self.path} has uncommitted changes: commit or stash them first")
        try:
            with self.repo.git.custom_environment(**_identity(author)):
                self.repo.git.merge("--no-ff", "-m", message, sha)
        except git.GitCommandError as exc:
            with suppress(git.GitCommandError):  # nothing to abort if it never started
                self.repo.git.merge("--abort")
            raise InfrabotError(f"{sha[:7]} does not merge cleanly into {into}: rebase it") from exc
        return self.repo.head.commit.hexsha

    def delete_branch(self, name: str) -> None:
        if self.branch_exists(name):
            self.repo.git.branch("-D", name)


_FILE_MODES = ("100644", "100755")
"""Regular files (not links, not submodules)."""


def _index_entry(entry: str) -> tuple[str, str | None]:
    """(path, blob) of an ``ls-files -s -v`` entry; no blob unless it is an ordinary
    ("H"), merged (stage 0) regular file."""
    meta, _, path = entry.partition("\t")
    fields = meta.split()
    ok = len(fields) == 4 and fields[0] == "H" and fields[1] in _FILE_MODES and fields[3] == "0"
    return path, fields[2] if ok else None


def _tree_entry(entry: str) -> tuple[str, str | None]:
    """(path, blob) of an ``ls-tree`` entry; no blob unless it is a regular file."""
    meta, _, path = entry.partition("\t")
    fields = meta.split()
    ok = len(fields) == 3 and fields[0] in _FILE_MODES and fields[1] == "blob"
    return path, fields[2] if ok else None


def _identity(author: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": author,
        "GIT_COMMITTER_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author}@infrabot.local",
        "GIT_COMMITTER_EMAIL": f"{author}@infrabot.local",
    }


def _keep_links(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, except that a symbolic link is kept as the link it is,
    wherever it points: a tree is data to validate, and the loader refuses links as findings
    (never following them), so a PR with a link to /etc/passwd fails its check instead of
    crashing the export.  Names still cannot escape ``dest`` (``tar`` filter)."""
    if member.issym():
        return tarfile.tar_filter(member, dest)
    return tarfile.data_filter(member, dest)
