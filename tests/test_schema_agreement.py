"""schemas/<Kind>.schema.json and the pydantic models in bot.model agree, field by field.

The schemas are the source of truth; the models mirror them.  This test fails when someone adds,
removes or changes a field (its requiredness, its enum values, its default) on one side only.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from bot.model import KINDS

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def load_schema(kind: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / f"{kind}.schema.json").read_text()))


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _literal_values(annotation: Any) -> set[Any] | None:
    annotation = _unwrap_optional(annotation)
    if typing.get_origin(annotation) is Literal:
        return set(typing.get_args(annotation))
    return None


def _item_annotation(annotation: Any) -> Any:
    annotation = _unwrap_optional(annotation)
    if typing.get_origin(annotation) in (tuple, list):
        return typing.get_args(annotation)[0]
    return None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _schema_enum(prop: dict[str, Any]) -> set[Any] | None:
    if "enum" in prop:
        return set(prop["enum"])
    if "const" in prop:
        return {prop["const"]}
    return None


def disagreements(model: type[BaseModel], schema: dict[str, Any], where: str = "") -> list[str]:
    """Every way ``model`` and the object ``schema`` differ (empty when they agree)."""
    problems: list[str] = []
    props: dict[str, Any] = schema.get("properties", {})
    fields = model.model_fields
    for name in sorted(set(props) - set(fields)):
        problems.append(f"{where}{name}: in the schema, not in the model")
    for name in sorted(set(fields) - set(props)):
        problems.append(f"{where}{name}: in the model, not in the schema")
    required = set(schema.get("required", [])) - {"kind"}
    model_required = {n for n, f in fields.items() if f.is_required()} - {"kind"}
    if required != model_required:
        problems.append(
            f"{where}required: schema {sorted(required)}, model {sorted(model_required)}"
        )
    if schema.get("additionalProperties") is not False:
        problems.append(f"{where}: the schema must forbid additional properties, as the model does")
    for name in sorted(set(props) & set(fields)):
        problems += _field_disagreements(f"{where}{name}", fields[name], props[name])
    return problems


def _field_disagreements(where: str, field: Any, prop: dict[str, Any]) -> list[str]:
    problems = []
    literal = _literal_values(field.annotation)
    if literal is not None and literal != _schema_enum(prop):
        problems.append(f"{where}: model allows {sorted(literal)}, schema {prop}")
    item = _item_annotation(field.annotation)
    item_literal = _literal_values(item) if item is not None else None
    if item_literal is not None and item_literal != _schema_enum(prop.get("items", {})):
        problems.append(f"{where}[]: model allows {sorted(item_literal)}, schema {prop}")
    if "default" in prop and (field.is_required() or field.default != prop["default"]):
        problems.append(f"{where}: schema default {prop['default']!r}, model {field.default!r}")
    scalar_default = isinstance(field.default, bool | int | str) and field.default is not None
    if scalar_default and "default" not in prop and "const" not in prop:
        problems.append(f"{where}: model default {field.default!r} is not declared in the schema")
    nested = _nested_model(field.annotation)
    if nested is not None:
        problems += disagreements(nested, prop, f"{where}.")
    return problems


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_model_and_schema_agree(kind: str) -> None:
    assert disagreements(KINDS[kind], load_schema(kind)) == []


def test_every_schema_kind_has_a_model() -> None:
    kinds = {
        p.name.removesuffix(".schema.json")
        for p in SCHEMAS.glob("*.schema.json")
        if json.loads(p.read_text()).get("properties", {}).get("kind")
    }
    assert kinds == set(KINDS)


def _add_field(s: dict[str, Any]) -> None:
    s["properties"]["colour"] = {"type": "string"}


def _require_cores(s: dict[str, Any]) -> None:
    s["required"].append("cores")


def _change_default(s: dict[str, Any]) -> None:
    s["properties"]["memory"]["default"] = 1024


def _drop_default(s: dict[str, Any]) -> None:
    del s["properties"]["template"]["default"]


def _drop_field(s: dict[str, Any]) -> None:
    del s["properties"]["gateway"]


@pytest.mark.parametrize(
    "mutate", [_add_field, _require_cores, _change_default, _drop_default, _drop_field]
)
def test_one_sided_changes_are_caught(mutate: Any) -> None:
    schema = copy.deepcopy(load_schema("Container"))
    mutate(schema)
    assert disagreements(KINDS["Container"], schema)


def test_enum_and_nested_changes_are_caught() -> None:
    schema = copy.deepcopy(load_schema("Host"))
    schema["properties"]["roles"]["items"]["enum"].append("storage")
    schema["properties"]["connection"]["enum"].append("winrm")
    schema["properties"]["ports"]["properties"]["ssh"] = {"type": "integer"}
    problems = disagreements(KINDS["Host"], schema)
    assert [p.split(":")[0] for p in problems] == ["connection", "ports.ssh", "roles[]"]
