"""GitHub's published REST description, as the fake's referee.

The vendored OpenAPI 3.0 subset (``tests/fixtures/github/openapi``) is turned into plain
JSON Schema once (``nullable: true`` becomes a union with null; ``$ref``s point into one
registered document).  ``complete`` fills the fields a response must have but the fake
does not model (avatars, URLs, counters) from the schema's own shape, so the fake sets
only what the forge reads; ``check`` then validates the whole response, and a response
that GitHub could not have sent fails the test that caused it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SUBSET = Path(__file__).parents[2] / "fixtures" / "github" / "openapi" / "rest-subset.json"
_URN = "urn:github-rest"


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example", "examples")}
    if "oneOf" in out:
        # The description says oneOf where its alternatives overlap (a 409 is a basic-error
        # or a repository-rule-violation-error, and {"message": …} is both): read it as
        # anyOf, so a response must still match at least one of them.
        out["anyOf"] = out.pop("oneOf")
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = _URN + out["$ref"]
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str) and "enum" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _document() -> dict[str, Any]:
    converted: dict[str, Any] = _convert(json.loads(SUBSET.read_text()))
    return converted


@cache
def _registry() -> Registry:
    resource = Resource(contents=_document(), specification=DRAFT202012)
    return Registry().with_resource(_URN, resource)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        pointer = schema["$ref"].removeprefix(_URN + "#/").split("/")
        node: Any = _document()
        for part in pointer:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(template, operation) of the documented operation that ``path`` matches."""
    for template, methods in _document()["paths"].items():
        # a trailing {ref} or {path} may hold slashes (refs/infrabot/lock, a/b.json)
        pattern = re.sub(r"\{(ref|path)\}$", "(.+)", template)
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", pattern) + "$"
        if re.match(pattern, path) and method.lower() in methods:
            return template, methods[method.lower()]
    return None


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    found = operation(method, path)
    if found is None:
        raise AssertionError(f"{method} {path} is not in the vendored REST description")
    responses = found[1]["responses"]
    response = responses.get(str(status))
    if response is None:
        return None
    response = _resolve(response)
    media = response.get("content", {}).get("application/json")
    return None if media is None else dict(media["schema"])


def skeleton(schema: dict[str, Any]) -> Any:
    schema = _resolve(schema)
    if "anyOf" in schema and {"type": "null"} in schema["anyOf"]:
        return None
    for key in ("allOf",):
        if key in schema:
            merged: dict[str, Any] = {}
            for part in schema[key]:
                value = skeleton(part)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return skeleton(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        return None if "null" in kind else skeleton({**schema, "type": kind[0]})
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: skeleton(props.get(name, {})) for name in schema.get("required", [])}
    fmt = schema.get("format")
    return {
        "array": [],
        "integer": 1,
        "number": 1,
        "boolean": False,
        "string": {
            "date-time": "2026-01-01T00:00:00Z",
            "uri": "https://github.invalid/",
            "email": "nobody@example.invalid",
        }.get(str(fmt), ""),
    }.get(str(kind))


def complete(schema: dict[str, Any], data: Any) -> Any:
    """``data`` with every required field it lacks filled in from ``schema``."""
    schema = _resolve(schema)
    if data is None:
        return None
    if "allOf" in schema:
        for part in schema["allOf"]:
            data = complete(part, data)
        return data
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s != {"type": "null"}]
            return complete(options[0], data) if options else data
    if isinstance(data, list) and "items" in schema:
        return [complete(schema["items"], item) for item in data]
    if isinstance(data, dict):
        props = schema.get("properties", {})
        out = dict(data)
        for name in schema.get("required", []):
            if name not in out:
                out[name] = skeleton(props.get(name, {}))
        for name, value in list(out.items()):
            if name in props and name in data:
                out[name] = complete(props[name], value)
        return out
    return data


def check(schema: dict[str, Any], data: Any) -> list[str]:
    validator = Draft202012Validator(schema, registry=_registry())
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message[:300]}"
        for err in validator.iter_errors(data)
    ]
