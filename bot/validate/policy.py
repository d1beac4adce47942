"""Project policy (``schemas/policy.yaml``): owners, no templating, allowed paths, approvals,
freeze windows.

Theory of operation: policy is project-owned and the bot never edits it.  Loading fails
closed: a missing or malformed policy file is an ``InfrabotError``, never a silent fallback to
defaults (which would, for instance, drop the extra approvals a protected environment needs).
Changed paths are normalised before matching, so ``infra/state/../../bot/x.py`` is outside.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import InfrabotError
from bot.estate.documents import Document, Limits
from bot.model import Finding
from bot.validate.excerpt import quote
from bot.validate.jsonpath import json_path

POLICY_FILE = "schemas/policy.yaml"
TEMPLATE_MARKERS = ("{{", "{%", "{#")


def _aware(value: datetime) -> datetime:
    """Naive times in policy are UTC, so comparing them with an aware ``now`` cannot fail."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class FreezeWindow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    reason: str

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"freeze window ends ({self.end}) before it starts ({self.start})")
        return self


class ProtectedEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    approvals: int = Field(ge=0)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    require_owner: bool = True
    forbid_templating: bool = True
    desired_state_paths: tuple[str, ...] = ("infra/state/**",)
    protected_environments: dict[str, ProtectedEnvironment] = Field(default_factory=dict)
    default_approvals: int = Field(default=1, ge=0)
    requester_is_author: bool = True
    """For a bot-drafted PR, the person who asked for the change counts as an author: their
    approval does not count, so two people are always involved."""
    freeze_windows: tuple[FreezeWindow, ...] = ()
    limits: Limits = Limits()


def load_policy(root: Path) -> Policy:
    """``root/schemas/policy.yaml`` as a ``Policy``; InfrabotError (file + reason) if unusable."""
    path = root / POLICY_FILE
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InfrabotError(f"{POLICY_FILE}: cannot read the policy: {exc}") from exc
    except YAMLError as exc:
        raise InfrabotError(f"{POLICY_FILE}: malformed YAML: {_first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise InfrabotError(f"{POLICY_FILE}: expected a mapping, found {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise InfrabotError(f"{POLICY_FILE}: {_describe(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def approvals_required(policy: Policy, environments: Iterable[str]) -> int:
    """Approvals a change needs: the most any touched protected environment asks for, and never
    fewer than the default."""
    protected = policy.protected_environments
    asked = [protected[env].approvals for env in environments if env in protected]
    return max([policy.default_approvals, *asked])


def active_freeze(policy: Policy, now: datetime) -> FreezeWindow | None:
    """The freeze window ``now`` falls in (start inclusive, end exclusive), if any."""
    at = _aware(now)
    return next((w for w in policy.freeze_windows if w.start <= at < w.end), None)


def outside_allowed_paths(policy: Policy, files: Iterable[str]) -> list[str]:
    """The files no ``desired_state_paths`` glob allows, in the order given."""
    return [f for f in files if not _allowed(policy.desired_state_paths, f)]


def _allowed(globs: tuple[str, ...], file: str) -> bool:
    normal = posixpath.normpath(file)
    if normal.startswith(("/", "../")) or normal in (".", ".."):
        return False
    return any(glob_regex(glob).match(normal) for glob in globs)


@functools.lru_cache(maxsize=64)
def glob_regex(glob: str) -> re.Pattern[str]:
    """A path glob as a regex: ``*`` and ``?`` stay inside one path segment, ``**`` crosses
    segments (``**/`` also matches no folder at all). Unlike plain fnmatch, ``docs/*.md`` does not
    match ``docs/x/a.md``."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(glob[i], re.escape(glob[i])))
            i += 1
    return re.compile("".join(out) + r"\Z")


def path_findings(policy: Policy, files: Iterable[str]) -> list[Finding]:
    allowed = ", ".join(policy.desired_state_paths)
    files = list(files)
    cap = policy.limits.max_changed_files
    too_many = [
        Finding(
            check="paths",
            message=(
                f"this change touches {len(files)} files, more than policy allows "
                f"(limits.max_changed_files: {cap}): split it into smaller changes"
            ),
        )
    ]
    return (too_many if len(files) > cap else []) + [
        Finding(
            check="paths",
            file=f,
            message=(
                f"{f} is outside the desired-state paths ({allowed}): "
                "a bot change may only edit desired state"
            ),
        )
        for f in outside_allowed_paths(policy, files)
    ]


def policy_findings(policy: Policy, docs: Iterable[Document]) -> list[Finding]:
    findings: list[Finding] = []
    for doc in docs:
        if policy.require_owner:
            findings.extend(_owner_findings(doc))
        if policy.forbid_templating:
            findings.extend(_template_findings(doc))
    return findings


def freeze_findings(policy: Policy, now: datetime) -> list[Finding]:
    window = active_freeze(policy, now)
    if window is None:
        return []
    message = (
        f"change freeze until {window.end.isoformat()} ({window.reason}): "
        "validation passes, but /apply is refused until the window ends"
    )
    return [Finding(check="policy", file=POLICY_FILE, message=message, severity="warning")]


def _owner_findings(doc: Document) -> list[Finding]:
    if not isinstance(doc.data, dict):
        return []
    owner = doc.data.get("owner")
    if isinstance(owner, str) and owner.strip():
        return []
    what = f"{doc.kind or 'resource'} {doc.name!r}" if doc.name else "this resource"
    message = f"{what} has no owner: policy requires one (add `owner: <team or person>`)"
    line = doc.line_of(("owner",))
    return [Finding(check="policy", file=doc.file, line=line, path="$.owner", message=message)]


def _template_findings(doc: Document) -> list[Finding]:
    findings = []
    for parts, text in _strings(doc.data, ()):
        marker = next((m for m in TEMPLATE_MARKERS if m in text), None)
        if marker is None:
            continue
        message = (
            f"{quote(text)} contains the template marker {marker!r}: desired state is data, "
            "never a template; write the literal value"
        )
        findings.append(
            Finding(
                check="policy",
                file=doc.file,
                line=doc.line_of(parts),
                path=json_path(parts),
                message=message,
            )
        )
    return findings


def _strings(
    node: Any, parts: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a document, keys included, with its JSON path."""
    if isinstance(node, str):
        yield parts, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield (*parts, key), key
            yield from _strings(value, (*parts, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*parts, i))
    elif isinstance(getattr(node, "value", None), str):  # a tagged scalar, e.g. !unsafe "{{ x }}"
        yield parts, node.value
