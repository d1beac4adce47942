"""The offline engine on the seed estate: plans, change sets, and the questions it asks."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from bot.engines import Engine, EngineContext, OfflineEngine, load_capabilities
from bot.estate import Estate, apply_changes, build_estate, read_documents
from bot.model import (
    ChangeAction,
    ChangeSet,
    Clarification,
    Host,
    Plan,
    Resource,
    RiskLevel,
    Ticket,
    parse_resource,
)
from bot.validate import validate_tree

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = load_capabilities(ROOT / "capabilities")
SEED = (
    "Create a container on pve1 for the API scanner and make it accessible at "
    "api-scanner.example.com"
)
READ = ("infra/state/hosts/local.yaml", "capabilities/expose-site.md")
ENGINE: Engine = OfflineEngine()


def seed_estate(*extra: Resource, without: tuple[tuple[str, str], ...] = ()) -> Estate:
    docs, findings = read_documents(ROOT)
    assert not findings
    estate = build_estate(docs)
    resources = {k: r for k, r in estate.resources.items() if k not in without}
    resources |= {r.key: r for r in extra}
    return Estate(resources=resources, files=estate.files)


def pve2() -> Host:
    return Host(
        name="pve2",
        address=ipaddress.IPv4Address("127.0.0.1"),
        roles=("node",),
        environment="lab",
        owner="platform",
    )


def ctx(estate: Estate | None = None) -> EngineContext:
    return EngineContext(estate or seed_estate(), CAPABILITIES, READ)


def ticket(
    title: str, body: str = "", replies: tuple[str, ...] = (), author: str = "alice"
) -> Ticket:
    return Ticket(number=42, title=title, body=body, replies=replies, author=author)


def plan_of(t: Ticket, context: EngineContext | None = None) -> Plan:
    plan = ENGINE.architect(t, context or ctx())
    assert isinstance(plan, Plan), plan
    return plan


def documents(t: Ticket, context: EngineContext | None = None) -> dict[tuple[str, str], Any]:
    context = context or ctx()
    changes = ENGINE.implement(t, plan_of(t, context), context)
    assert isinstance(changes, ChangeSet), changes
    return {(c.kind, c.name): c.data for c in changes.changes}


def questions_of(t: Ticket, context: EngineContext | None = None) -> tuple[str, ...]:
    result = ENGINE.architect(t, context or ctx())
    assert isinstance(result, Clarification), result
    assert result.reason
    return result.questions


SEED_CONTAINER = {
    "kind": "Container",
    "name": "api-scanner",
    "owner": "alice",
    "environment": "lab",
    "node": "pve1",
    "vmid": 101,
    "hostname": "api-scanner",
    "cores": 1,
    "memory": 512,
    "disk": 8,
    "ip": "10.77.0.11/24",
    "gateway": "10.77.0.1",
    "service_port": 8080,
}
SEED_SITE = {
    "kind": "Site",
    "name": "api-scanner",
    "owner": "alice",
    "environment": "lab",
    "domain": "api-scanner.example.com",
    "upstream": "http://10.77.0.11:8080",
    "proxy": "proxy1",
}
SEED_RECORD = {
    "kind": "DnsRecord",
    "name": "api-scanner.example.com",
    "owner": "alice",
    "environment": "lab",
    "type": "A",
    "value": "127.0.0.1",
    "server": "dns1",
}
SEED_MONITORING = {
    "kind": "MonitoringTarget",
    "name": "api-scanner",
    "owner": "alice",
    "environment": "lab",
    "monitor": "mon1",
    "targets": ["10.77.0.11:8080"],
    "probe": "http://api-scanner.example.com/",
    "labels": {"service": "api-scanner"},
}


def test_the_seed_example_drafts_container_site_and_record() -> None:
    docs = documents(ticket(SEED))
    assert docs == {
        ("Container", "api-scanner"): SEED_CONTAINER,
        ("Site", "api-scanner"): SEED_SITE,
        ("DnsRecord", "api-scanner.example.com"): SEED_RECORD,
    }
    for data in docs.values():
        parse_resource(data)
        assert list(data)[:2] == ["kind", "name"]


def test_the_seed_example_with_monitoring() -> None:
    docs = documents(ticket(SEED + " and set up monitoring"))
    assert list(docs) == [
        ("Container", "api-scanner"),
        ("Site", "api-scanner"),
        ("DnsRecord", "api-scanner.example.com"),
        ("MonitoringTarget", "api-scanner"),
    ]
    assert docs[("MonitoringTarget", "api-scanner")] == SEED_MONITORING


def test_the_plan_of_the_seed_example() -> None:
    plan = plan_of(ticket(SEED))
    assert plan.ticket == 42 and plan.engine == "offline"
    assert plan.objective == SEED
    assert plan.capabilities == ("create-container", "expose-site")
    assert plan.read == READ
    assert plan.risk is RiskLevel.MEDIUM
    assert [(c.action, c.kind, c.name, c.path, c.hosts) for c in plan.changes] == [
        (
            ChangeAction.CREATE,
            "Container",
            "api-scanner",
            "infra/state/containers/api-scanner.yaml",
            ("pve1",),
        ),
        (
            ChangeAction.CREATE,
            "Site",
            "api-scanner",
            "infra/state/sites/api-scanner.yaml",
            ("proxy1",),
        ),
        (
            ChangeAction.CREATE,
            "DnsRecord",
            "api-scanner.example.com",
            "infra/state/dns/api-scanner.example.com.yaml",
            ("dns1",),
        ),
    ]
    for said in (
        "vmid 101 is the next free vmid",
        "owner defaults to the requester @alice",
        "ip 10.77.0.11/24 is the next free address in 10.77.0.0/24",
        "proxy proxy1 is the only proxy host",
    ):
        assert said in plan.assumptions
    assert not any(a.startswith("node ") for a in plan.assumptions), "pve1 was told, not assumed"
    for criterion in (
        "api-scanner.example.com resolves to 127.0.0.1 on dns1",
        "http://api-scanner.example.com/ through proxy1 answers with the service in container "
        "api-scanner",
    ):
        assert criterion in plan.acceptance_criteria
    assert "nginx -t on the vhosts rendered for proxy1" in plan.validation_steps
    assert "ansible-playbook --check --diff limited to dns1, proxy1, pve1" in plan.validation_steps
    assert plan.rollback.startswith("Revert the pull request; merging the revert removes")
    assert plan.parameters["vmid"] == 101 and plan.parameters["ip"] == "10.77.0.11/24"


def test_monitoring_acceptance_names_the_file_sd() -> None:
    plan = plan_of(ticket(SEED + " and set up monitoring"))
    assert "10.77.0.11:8080 is in Prometheus's file_sd on mon1" in plan.acceptance_criteria
    assert "nginx -t" not in " ".join(plan.validation_steps[:-1])


def test_implement_is_a_pure_function_of_the_plan() -> None:
    context, t = ctx(), ticket(SEED, body="memory: 1024")
    plan = plan_of(t, context)
    first, second = ENGINE.implement(t, plan, context), ENGINE.implement(t, plan, context)
    assert first == second
    edited = plan.model_copy(update={"parameters": plan.parameters | {"memory": 4096}})
    changes = ENGINE.implement(t, edited, context)
    assert isinstance(changes, ChangeSet)
    assert changes.changes[0].data["memory"] == 4096
    assert changes.summary == (
        "Add Container api-scanner, Site api-scanner and DnsRecord api-scanner.example.com"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("memory: 2048\ncores: 2", {"memory": 2048, "cores": 2}),
        ("with 2 cores, 1 GB of RAM and a 20 GB disk", {"cores": 2, "memory": 1024, "disk": 20}),
        ("The service listens on port 9000.", {"service_port": 9000}),
        ("vmid: 250\nip: 10.77.0.99/24", {"vmid": 250, "ip": "10.77.0.99/24"}),
        ("owner: team-scanner", {"owner": "team-scanner"}),
        ("This is for team security.", {"owner": "security"}),
        ("environment: staging", {"environment": "staging"}),
        ("name: scanner", {"name": "scanner", "hostname": "scanner"}),
    ],
)
def test_told_values_fill_the_container(body: str, expected: dict[str, Any]) -> None:
    data = next(iter(documents(ticket(SEED, body)).values()))
    assert {k: data[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ("memory: 4 GB", "memory", 4096),
        ("disk: 1 TB", "disk", 1024),
        ("memory: 768MiB", "memory", 768),
    ],
)
def test_told_sizes_may_carry_a_unit(body: str, key: str, value: int) -> None:
    assert documents(ticket(SEED, body))[("Container", "api-scanner")][key] == value


def test_a_cname_points_the_name_at_the_target() -> None:
    docs = documents(ticket("Add a CNAME www.example.com to status.example.com"))
    record = docs[("DnsRecord", "www.example.com")]
    assert (record["type"], record["value"]) == ("CNAME", "status.example.com")


def test_told_port_flows_into_the_upstream() -> None:
    docs = documents(ticket(SEED, "service_port: 9000"))
    assert docs[("Site", "api-scanner")]["upstream"] == "http://10.77.0.11:9000"


def test_an_explicit_upstream_url_wins_over_the_container() -> None:
    docs = documents(ticket("Reverse proxy wiki.example.com to http://10.9.9.9:3000/"))
    assert docs[("Site", "wiki")]["upstream"] == "http://10.9.9.9:3000/"


def test_exposing_an_existing_container() -> None:
    docs = documents(ticket("Expose the status-page container at status2.example.com"))
    assert docs[("Site", "status2")]["upstream"] == "http://10.77.0.10:8080"
    assert docs[("DnsRecord", "status2.example.com")]["value"] == "127.0.0.1"


def test_monitoring_an_existing_service() -> None:
    estate = seed_estate(without=(("MonitoringTarget", "status-page"),))
    docs = documents(ticket("Set up monitoring for status-page"), ctx(estate))
    target = docs[("MonitoringTarget", "status-page")]
    assert target["targets"] == ["10.77.0.10:8080"]
    assert target["probe"] == "http://status.example.com/"


def test_a_standalone_dns_record() -> None:
    plan = plan_of(ticket("Add a DNS record legacy.example.com pointing to 10.77.0.50"))
    assert plan.risk is RiskLevel.LOW
    assert plan.acceptance_criteria == ("legacy.example.com resolves to 10.77.0.50 on dns1",)


def test_removing_a_site_deletes_it_with_its_record_and_monitoring() -> None:
    t = ticket("Remove the site status.example.com")
    plan = plan_of(t)
    assert plan.risk is RiskLevel.HIGH
    assert [(c.action, c.kind, c.name, c.path) for c in plan.changes] == [
        (ChangeAction.DELETE, "Site", "status-page", "infra/state/sites/status-page.yaml"),
        (
            ChangeAction.DELETE,
            "DnsRecord",
            "status.example.com",
            "infra/state/dns/status.example.com.yaml",
        ),
        (
            ChangeAction.DELETE,
            "MonitoringTarget",
            "status-page",
            "infra/state/monitoring/status-page.yaml",
        ),
    ]
    assert "proxy1 no longer serves status.example.com" in plan.acceptance_criteria
    assert "restores" in plan.rollback
    assert ("Container", "status-page") not in documents(t)


def test_two_nodes_and_none_named_asks_which_then_a_reply_resolves_it() -> None:
    context = ctx(seed_estate(pve2()))
    assert isinstance(ENGINE.architect(ticket(SEED), context), Plan), "the seed names pve1"
    unnamed = "Create a container for the API scanner"
    assert questions_of(ticket(unnamed), context) == (
        "Which node should run the container? Reply with `node: <name>` (one of: pve1, pve2).",
    )
    docs = documents(ticket(unnamed, replies=("node: pve2",)), context)
    assert docs[("Container", "api-scanner")]["node"] == "pve2"


@pytest.mark.parametrize(
    ("title", "expected", "reply", "check"),
    [
        (
            "Create a container on pve9 for the API scanner",
            "There is no host pve9. Which node should run the container? Reply with `node: <name>` "
            "(one of: pve1).",
            "node: pve1",
            ("Container", "api-scanner", "node", "pve1"),
        ),
        (
            "Create a container on proxy1 for the API scanner",
            "proxy1 is not a node host (its roles: proxy).",
            "`node: pve1`",
            ("Container", "api-scanner", "node", "pve1"),
        ),
        (
            SEED.replace("api-scanner.example.com", "status.example.com"),
            "status.example.com is already served by site status-page. Which domain should it be "
            "reachable at? Reply with `domain: <hostname>`.",
            "domain: scanner.example.com",
            ("Site", "api-scanner", "domain", "scanner.example.com"),
        ),
        (
            "Create a container on pve1 for the status page",
            "A Container named status-page already exists "
            "(infra/state/containers/status-page.yaml). What should it be called? "
            "Reply with `name: <name>`.",
            "name: status-page-2",
            ("Container", "status-page-2", "vmid", 101),
        ),
        (
            "Add a DNS record status.example.com pointing to 10.0.0.1",
            "status.example.com already has a DNS record (on dns1).",
            "domain: stat.example.com",
            ("DnsRecord", "stat.example.com", "value", "10.0.0.1"),
        ),
        (
            "Add a DNS record legacy.example.com",
            "What should the record point to? Reply with `value: <IPv4 address>`.",
            "value: 10.1.2.3",
            ("DnsRecord", "legacy.example.com", "value", "10.1.2.3"),
        ),
        (
            "Make it accessible at a.example.com and at b.example.com",
            "The request names more than one domain (a.example.com, b.example.com).",
            "domain: b.example.com\nupstream: http://10.0.0.9:80",
            ("Site", "b", "upstream", "http://10.0.0.9:80"),
        ),
        (
            "Remove the site nope.example.com",
            "No site serves nope.example.com.",
            "site: status-page",
            ("Site", "status-page", "domain", "status.example.com"),
        ),
        (
            "please make it faster",
            "Reply with `capability: <name>`",
            "capability: create-container\nname: faster",
            ("Container", "faster", "node", "pve1"),
        ),
    ],
)
def test_ambiguity_asks_and_a_reply_resolves_it(
    title: str, expected: str, reply: str, check: tuple[str, str, str, Any]
) -> None:
    asked = questions_of(ticket(title))
    assert any(expected in q for q in asked), asked
    for q in asked:
        assert "`" in q and ": " in q, "every question says what to reply"
    kind, name, key, value = check
    changes = ENGINE.implement(
        ticket(title, replies=(reply,)), plan_of(ticket(title, replies=(reply,))), ctx()
    )
    assert isinstance(changes, ChangeSet)
    data = {(c.kind, c.name): c.data for c in changes.changes}[(kind, name)]
    assert data[key] == value


@pytest.mark.parametrize(
    ("body", "question"),
    [
        ("memory: lots", "`lots` (memory) is not a whole number from 16 to 1048576."),
        ("memory: 99999999", "is not a whole number from 16 to 1048576"),
        ("disk: 1500 MB", "is not a whole number from 1 to 65536"),
        ("vmid: 100", "vmid 100 is used by container status-page."),
        ("ip: 10.77.0.10/24", "10.77.0.10 is used by container status-page."),
        ("ip: 10.77.0.300/24", "is not a valid IPv4 address"),
        ("domain: not a domain", "The value given for `domain` is not a domain name"),
        ("name: Bad_Name!", "The value given for `name` is not a valid name"),
        ("node: dns1", "dns1 is not a node host"),
        ("owner: @", "is not a team or user name"),
        ("upstream: ftp://x", "Where should the site send requests?"),
    ],
)
def test_a_bad_value_is_asked_about_never_passed_through(body: str, question: str) -> None:
    asked = questions_of(ticket(SEED, body))
    assert any(question in q for q in asked), asked


def test_an_unknown_author_cannot_be_an_owner() -> None:
    asked = questions_of(ticket(SEED, author="Robert'); DROP"))
    assert any("Who owns it?" in q for q in asked)
    assert documents(ticket(SEED, "owner: platform", author="Robert'); DROP"))


JINJA = "{{ lookup('pipe', 'id') }}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


@pytest.mark.parametrize(
    ("title", "body", "replies"),
    [
        (SEED + " " + JINJA, "", ()),
        (SEED, f"name: {JINJA}", ()),
        (SEED, f"domain: {JINJA}.example.com", ()),
        (SEED, "owner: {% for x in y %}", ()),
        (SEED, "", (f"upstream: http://{JINJA}/",)),
        (
            f"Create a container on pve1 for the {JINJA} and make it accessible at x{JINJA}.com",
            "",
            (),
        ),
        ("Create a container on pve1 for the scanner", "ip: {# 10.77.0.20/24 #}", ()),
        ("Add a DNS record {{x}}.example.com pointing to {{ y }}", "", ()),
        (SEED, "environment: {{ env }}", ()),
    ],
)
def test_template_text_never_reaches_a_value(
    title: str, body: str, replies: tuple[str, ...]
) -> None:
    t = ticket(title, body, replies)
    context = ctx()
    result = ENGINE.architect(t, context)
    if isinstance(result, Clarification):
        texts = [*result.questions, result.reason]
    else:
        changes = ENGINE.implement(t, result, context)
        assert isinstance(changes, ChangeSet)
        texts = [
            *_strings(result.model_dump(mode="json")),
            *_strings([c.data for c in changes.changes]),
            changes.summary,
        ]
    for text in texts:
        assert not any(mark in text for mark in ("{{", "{%", "{#")), text
        assert "lookup" not in text


def test_a_plan_that_no_longer_fits_the_estate_is_not_drafted() -> None:
    t = ticket(SEED)
    plan = plan_of(t)
    later = ctx(seed_estate(*(parse_resource(SEED_CONTAINER),)))
    result = ENGINE.implement(t, plan, later)
    assert isinstance(result, Clarification)
    assert "A Container named api-scanner already exists" in result.questions[0]


@pytest.mark.parametrize(
    "update",
    [
        {"capabilities": ("create-container", "teleport")},
        {"capabilities": ()},
        {"parameters": {"node": "pve1"}},
        {"parameters": {"site": "gone.example.com"}, "capabilities": ("remove-site",)},
    ],
)
def test_a_broken_plan_gets_a_clarification_not_a_traceback(update: dict[str, Any]) -> None:
    t = ticket(SEED)
    plan = plan_of(t).model_copy(update=update)
    result = ENGINE.implement(t, plan, ctx())
    assert isinstance(result, Clarification)
    assert "/plan" in result.questions[0]


@pytest.mark.parametrize(
    "title",
    [
        SEED + " and set up monitoring",
        "Add a CNAME www.example.com to status.example.com",
        "Expose the status-page container at status2.example.com",
        "Remove the site status.example.com",
    ],
)
def test_drafts_pass_the_pipelines_validation(seed_tree: Path, title: str) -> None:
    """What the engine drafts, written by the estate editor, passes every validation check."""
    docs, _ = read_documents(seed_tree)
    context = EngineContext(build_estate(docs), load_capabilities(seed_tree / "capabilities"), ())
    t = ticket(title)
    changes = ENGINE.implement(t, plan_of(t, context), context)
    assert isinstance(changes, ChangeSet)
    written = apply_changes(seed_tree, changes)
    report = validate_tree(seed_tree, changed_files=written)
    assert report.ok, report.errors()
    assert sorted(c.path for c in plan_of(t, context).changes) == written
