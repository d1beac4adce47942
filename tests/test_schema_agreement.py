"""schemas/<Kind>.schema.json and the pydantic models in bot.model agree, field by field.

The schemas are the source of truth; the models mirror them.  This test fails when someone adds,
removes or changes a field (its requiredness, its enum values, its default) on one side only.
"""

from __future__ import annotations

import copy
import functools
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


# --- Whole values: the schema (as infrabot validates it) and the model refuse the same text.

EXAMPLES: dict[str, dict[str, Any]] = {
    "Host": {
        "kind": "Host",
        "name": "dns1",
        "owner": "platform",
        "environment": "lab",
        "description": "a host",
        "address": "127.0.0.1",
        "roles": ["dns"],
    },
    "Container": {
        "kind": "Container",
        "name": "web",
        "owner": "platform",
        "node": "pve1",
        "vmid": 100,
        "hostname": "web.example.com",
        "ip": "10.77.0.10/24",
        "gateway": "10.77.0.1",
        "template": "debian-12-standard",
    },
    "Site": {
        "kind": "Site",
        "name": "web",
        "owner": "platform",
        "domain": "web.example.com",
        "upstream": "http://10.77.0.10:8080",
        "proxy": "proxy1",
        "tls": {"certificate": "/etc/ssl/web.pem", "key": "/etc/ssl/web.key"},
    },
    "DnsRecord": {
        "kind": "DnsRecord",
        "name": "www.example.com",
        "owner": "platform",
        "type": "CNAME",
        "value": "web.example.com",
        "server": "dns1",
    },
    "MonitoringTarget": {
        "kind": "MonitoringTarget",
        "name": "web",
        "owner": "platform",
        "monitor": "mon1",
        "targets": ["web.example.com:8080"],
        "probe": "http://web.example.com/",
        "labels": {"team": "platform"},
    },
}
HOSTILE_SUFFIXES = ["\n", "\r", "\x00", "\x1b[2J", "\u2028", "\u202e", "\ufeff", "\x85"]


def _string_paths(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, str):
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() if k != "kind" for p in _string_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _string_paths(v, (*path, i))]
    return []


def _with(doc: dict[str, Any], path: tuple[str | int, ...], suffix: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] += suffix
    return out


@functools.cache
def _schemas() -> Any:
    from bot.validate.schema import load_schemas

    return load_schemas(SCHEMAS.parent)


def _schema_accepts(kind: str, doc: dict[str, Any]) -> bool:
    return not list(_schemas().validators[kind].iter_errors(doc))


def _model_accepts(doc: dict[str, Any]) -> bool:
    from pydantic import ValidationError

    from bot.model import parse_resource

    try:
        parse_resource(doc)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_the_examples_are_valid_on_both_sides(kind: str) -> None:
    assert _schema_accepts(kind, EXAMPLES[kind]) and _model_accepts(EXAMPLES[kind])


@pytest.mark.parametrize("suffix", HOSTILE_SUFFIXES, ids=repr)
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_no_string_field_takes_a_control_character(kind: str, suffix: str) -> None:
    """A trailing newline (Python's ``$`` matches before it), other C0/C1 controls and
    invisible format characters: refused in every string field, by the schema and the model."""
    doc = EXAMPLES[kind]
    for path in _string_paths(doc):
        if path == ("description",) and suffix == "\n":
            continue  # free text may hold newlines (checked below)
        bad = _with(doc, path, suffix)
        assert not _schema_accepts(kind, bad), (path, suffix)
        assert not _model_accepts(bad), (path, suffix)


def test_free_text_may_hold_newlines_and_tabs_but_no_other_control() -> None:
    host = EXAMPLES["Host"]
    prose = host | {"description": "line one\n\tline two\n"}
    assert _schema_accepts("Host", prose) and _model_accepts(prose)
    escape = host | {"description": "see \x1b[31mred\x1b[0m"}
    assert not _schema_accepts("Host", escape) and not _model_accepts(escape)


def test_a_trailing_newline_fails_hostname_domain_and_cname_alike() -> None:
    cases = [
        ("Container", ("hostname",)),
        ("Site", ("domain",)),
        ("DnsRecord", ("value",)),
        ("DnsRecord", ("name",)),
        ("Container", ("name",)),
    ]
    for kind, path in cases:
        bad = _with(EXAMPLES[kind], path, "\n")
        assert not _schema_accepts(kind, bad), (kind, path)
        assert not _model_accepts(bad), (kind, path)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def _unconstrained_strings(node: Any, where: str = "$") -> list[str]:
    """String properties with neither pattern, format, enum nor const: nothing would refuse a
    control character in them."""
    if not isinstance(node, dict):
        return []
    found = []
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(node):
        found.append(where)
    for key, value in node.get("properties", {}).items():
        found += _unconstrained_strings(value, f"{where}.{key}")
    for key in ("items", "additionalProperties"):
        found += _unconstrained_strings(node.get(key), f"{where}.{key}")
    return found


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_string_is_constrained_and_every_pattern_anchored(kind: str) -> None:
    schema = load_schema(kind)
    assert _unconstrained_strings(schema) == []
    for pattern in _patterns(schema):
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
