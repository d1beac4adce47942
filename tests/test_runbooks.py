"""Every runbook follows the format and is a well-formed decision tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas/runbook.schema.json").read_text())
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))


def test_there_are_runbooks() -> None:
    assert RUNBOOKS


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_runbook_is_a_valid_reachable_tree(path: Path) -> None:
    book = YAML(typ="safe").load(path.read_text())
    errors = [e.message for e in Draft202012Validator(SCHEMA).iter_errors(book)]
    assert errors == []
    steps = book["steps"]
    seen, todo = set(), [book["start"]]
    while todo:
        name = todo.pop()
        assert name in steps, f"{path.name}: step {name!r} is not defined"
        if name in seen:
            continue
        seen.add(name)
        todo += [steps[name][k] for k in ("then", "else") if k in steps[name]]
    assert seen == set(steps), f"{path.name}: unreachable steps {set(steps) - seen}"


def test_a_broken_runbook_is_caught() -> None:
    bad = {
        "name": "x",
        "summary": "s",
        "applies_to": ["Site"],
        "start": "a",
        "steps": {"a": {"action": "do it"}},
    }  # an action without a risk level
    assert list(Draft202012Validator(SCHEMA).iter_errors(bad))
