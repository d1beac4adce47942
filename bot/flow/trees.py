"""Snapshots of the repository at a commit, in a scratch directory that is always removed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bot.engines.capabilities import Capability, load_capabilities
from bot.errors import InfrabotError
from bot.estate import Estate, build_estate, read_documents
from bot.flow.services import Services
from bot.validate import index_tree
from bot.validate.index import VerdictStore


@contextmanager
def snapshot(svc: Services, rev: str) -> Iterator[Path]:
    svc.paths.scratch.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="tree-", dir=svc.paths.scratch))
    try:
        yield svc.git.export(rev, path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def estate_of(
    tree: Path, cache: VerdictStore | None = None, blobs: Mapping[str, str] | None = None
) -> Estate:
    """The estate ``tree`` describes. With a cache, from the validation index (files already
    judged are not read again; ``blobs``, git's ids of the tree's files, spares hashing
    them); a tree whose rules cannot be loaded is read directly."""
    if cache is not None:
        try:
            return index_tree(tree, cache, blobs).estate()
        except InfrabotError:
            pass
    docs, _ = read_documents(tree)
    return build_estate(docs)


def capabilities_of(tree: Path) -> list[Capability]:
    return load_capabilities(tree / "capabilities")


def files_read(tree: Path) -> tuple[str, ...]:
    """What an engine is given to read: the desired state, capabilities, runbooks, policy."""
    globs = ("infra/state/**/*.yaml", "capabilities/*.md", "runbooks/*", "schemas/policy.yaml")
    found = {p.relative_to(tree).as_posix() for g in globs for p in tree.glob(g) if p.is_file()}
    return tuple(sorted(found))
