"""The capability library: every file parses, agrees with the schemas, and its example is true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.engines import EngineContext, OfflineEngine, load_capabilities
from bot.engines.capabilities import Capability, parse_capability
from bot.engines.documents import BUILDERS, field_order
from bot.engines.finders import FINDERS
from bot.engines.parsing import PARSERS
from bot.engines.resolve import QUESTIONS
from bot.errors import InfrabotError
from bot.estate import build_estate, read_documents
from bot.model import ChangeSet, Plan, Ticket, parse_resource

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = load_capabilities(ROOT / "capabilities")
SCHEMAS = {  # the resource kinds: schemas/<Kind>.schema.json whose title is the kind
    schema["title"]: schema
    for path in (ROOT / "schemas").glob("*.schema.json")
    if (schema := json.loads(path.read_text()))["title"] == path.name.split(".")[0]
}


def test_the_library_has_the_capabilities_the_bot_promises() -> None:
    names = {c.name for c in CAPABILITIES}
    assert {
        "create-container",
        "expose-site",
        "set-up-monitoring",
        "add-dns-record",
        "remove-site",
    } <= names
    assert "README" not in names
    assert set(SCHEMAS) == {"Host", "Container", "Site", "DnsRecord", "MonitoringTarget"}


@pytest.mark.parametrize("cap", CAPABILITIES, ids=lambda c: c.name)
def test_declared_kinds_are_schema_kinds(cap: Capability) -> None:
    assert set(cap.kinds) <= set(SCHEMAS), cap.kinds


@pytest.mark.parametrize("cap", CAPABILITIES, ids=lambda c: c.name)
def test_example_documents_are_valid_resources_of_declared_kinds(cap: Capability) -> None:
    docs = cap.example_documents()
    assert docs
    for doc in docs:
        parse_resource(doc)
        assert list(doc)[:2] == ["kind", "name"]
        properties = list(SCHEMAS[doc["kind"]]["properties"])
        assert list(doc) == [p for p in properties if p in doc], "schema property order"


@pytest.mark.parametrize("cap", CAPABILITIES, ids=lambda c: c.name)
def test_the_offline_engine_drafts_exactly_the_example(cap: Capability) -> None:
    """The docs stay true: the example request on the seed estate gives the example YAML."""
    docs, _ = read_documents(ROOT)
    ctx = EngineContext(build_estate(docs), CAPABILITIES, ())
    request = Ticket(
        number=1,
        title=cap.example_request,
        author=cap.example_author or "alice",
    )
    plan = OfflineEngine().architect(request, ctx)
    assert isinstance(plan, Plan), plan
    assert cap.name in plan.capabilities
    changes = OfflineEngine().implement(request, plan, ctx)
    assert isinstance(changes, ChangeSet), changes
    assert [c.data for c in changes.changes] == cap.example_documents()


@pytest.mark.parametrize("cap", CAPABILITIES, ids=lambda c: c.name)
def test_the_offline_engine_knows_every_parameter(cap: Capability) -> None:
    assert cap.name in BUILDERS
    for param in cap.parameters:
        assert param.name in PARSERS, param.name
        assert param.name in QUESTIONS, param.name
        assert param.name in FINDERS or param.default is not None, param.name
        assert param.source and param.description


def test_aliases_belong_to_one_capability_each() -> None:
    seen: dict[str, str] = {}
    for cap in CAPABILITIES:
        for alias in cap.aliases:
            assert alias not in seen, f"{alias!r} in {seen.get(alias)} and {cap.name}"
            seen[alias] = cap.name


def test_builders_write_fields_in_schema_property_order() -> None:
    for kind, schema in SCHEMAS.items():
        assert field_order(kind) == list(schema["properties"]), kind


GOOD = (ROOT / "capabilities" / "add-dns-record.md").read_text()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("## Aliases", "## Synonyms"), "missing section '## Aliases'"),
        (lambda t: t.replace("## Risk\nlow", "## Risk\nscary"), "'## Risk': expected low"),
        (lambda t: t.replace("creates: DnsRecord", "creates: Database"), "unknown kind 'Database'"),
        (lambda t: t.replace("- creates:", "- makes:"), "unknown label 'makes'"),
        (lambda t: t.replace("| ttl | no | 300 |", "| ttl | maybe | 300 |"), "row 5"),
        (lambda t: t.replace("| name | required |", "| key | required |"), "expected a table"),
        (lambda t: t.replace('Request: "', "Ask: "), "'## Example': expected a line Request"),
        (lambda t: t.replace("type: A\n", "type: [A\n"), "the yaml block is not YAML"),
        (lambda t: t.replace("# Add a DNS record\n", ""), "missing the '# Title' line"),
        (lambda t: t.replace("- add a dns record", "- Add A DNS {{ record }}"), "'## Aliases'"),
    ],
)
def test_a_malformed_file_names_the_file_and_the_section(edit: object, message: str) -> None:
    text = edit(GOOD)  # type: ignore[operator]
    assert text != GOOD
    with pytest.raises(InfrabotError) as err:
        parse_capability("add-dns-record", text, "capabilities/add-dns-record.md")
    assert str(err.value).startswith("capabilities/add-dns-record.md: ")
    assert message in str(err.value)


def test_loading_reads_every_file_but_the_readme(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# The format\n\nNot a capability.\n")
    (tmp_path / "add-dns-record.md").write_text(GOOD)
    assert [c.name for c in load_capabilities(tmp_path)] == ["add-dns-record"]
    with pytest.raises(InfrabotError, match="capability library is missing"):
        load_capabilities(tmp_path / "nope")


def test_a_heading_inside_the_example_block_is_not_a_section() -> None:
    text = GOOD.replace("kind: DnsRecord\n", "# comment\n## not a section\nkind: DnsRecord\n")
    cap = parse_capability("add-dns-record", text, "x.md")
    assert cap.example_documents()[0]["kind"] == "DnsRecord"
