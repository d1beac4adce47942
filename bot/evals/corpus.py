"""The corpus: each case is a request on the seed estate and what the result must be.

Cases are YAML (``tests/evals/*.yaml``) read into frozen pydantic models here, once; a
malformed file or a duplicate id is an ``InputError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import InputError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Frozen):
    action: Literal["create", "update", "delete"] | None = None
    kind: str
    name: str
    fields: dict[str, Any] = Field(default_factory=dict)


class Case(_Frozen):
    id: str
    request: str
    body: str = ""
    author: str = "alice"
    expect: Literal["pr", "question", "refusal"]
    changes: tuple[Expected, ...] = ()
    untouched: tuple[tuple[str, str], ...] = ()
    """(kind, name) pairs the result must not change."""
    only: bool = False
    """The result changes exactly ``changes`` and nothing else."""
    mentions: str | None = None
    """Text the question (or the plan's refusal) must contain."""
    dry_run: Literal["passes", "fails"] = "passes"
    """``fails``: the right PR is one whose dry-run fails (e.g. TLS with a certificate the
    proxy does not have: ``nginx -t`` refuses it).  Only ``pr`` depth dry-runs."""

    def renumbered(self, old: str, new: str) -> Case:
        """The case on a copy of the seed estate whose addresses moved from ``old`` to
        ``new`` (a prefix such as ``10.77.0.``): the request and the fields move with them."""
        if old == new:
            return self
        changes = tuple(
            e.model_copy(update={"fields": _replaced(e.fields, old, new)}) for e in self.changes
        )
        return self.model_copy(
            update={
                "request": self.request.replace(old, new),
                "body": self.body.replace(old, new),
                "changes": changes,
            }
        )


def _replaced(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replaced(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, old, new) for v in value]
    return value


def load_corpus(directory: Path) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or []
            cases += [Case.model_validate(item) for item in data]
        except (YAMLError, ValidationError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{path}: not a list of eval cases: {first}") from exc
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InputError(f"{directory}: duplicate case ids: {', '.join(dupes)}")
    return cases
