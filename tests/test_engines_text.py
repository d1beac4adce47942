"""Routing and extraction: the pure functions that read a request, table by table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engines import load_capabilities
from bot.engines.routing import alias_matches, route
from bot.engines.text import (
    domains,
    domains_after,
    has_template,
    ipv4s,
    numbers,
    read_request,
    service_phrase,
    team,
    tokens_after,
    tokens_around,
    urls,
)
from bot.model import Clarification, Ticket

ROOT = Path(__file__).resolve().parent.parent
CAPABILITIES = load_capabilities(ROOT / "capabilities")
SEED = (
    "Create a container on pve1 for the API scanner and make it accessible at "
    "api-scanner.example.com"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SEED, ["create-container", "expose-site"]),
        (SEED + " and set up monitoring", ["create-container", "expose-site", "set-up-monitoring"]),
        (
            "Make it accessible at x.example.com and create a container",
            ["create-container", "expose-site"],
        ),
        ("CREATE   A\nCONTAINER please", ["create-container"]),
        ("Spin up a container for the wiki", ["create-container"]),
        ("Reverse proxy wiki.example.com to http://10.0.0.5:80", ["expose-site"]),
        ("Expose the status-page container at status2.example.com", ["expose-site"]),
        ("Add a DNS record legacy.example.com pointing to 10.77.0.50", ["add-dns-record"]),
        ("Please monitor it", ["set-up-monitoring"]),
        ("Remove the site status.example.com", ["remove-site"]),
        ("Take down the site status-page", ["remove-site"]),
        ("please make it faster", []),
        ("recreate a container", []),  # word boundary: "create a container" is not in it
        ("the exposed port is wrong", []),
        ("", []),
    ],
)
def test_routing_by_alias(text: str, expected: list[str]) -> None:
    result = route(text, None, CAPABILITIES)
    if not expected:
        assert isinstance(result, Clarification)
        for cap in CAPABILITIES:
            assert f"`{cap.name}`" in result.questions[0]
        assert "capability: <name>" in result.questions[0]
    else:
        assert not isinstance(result, Clarification)
        assert [c.name for c in result] == expected


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        ("expose-site", ["expose-site"]),
        ("expose-site, create-container", ["create-container", "expose-site"]),
        ("Remove-Site", ["remove-site"]),
        ("frobnicate", None),
        ("expose-site, frobnicate", None),
    ],
)
def test_routing_by_explicit_capability_line(explicit: str, expected: list[str] | None) -> None:
    result = route("please make it faster", explicit, CAPABILITIES)
    if expected is None:
        assert isinstance(result, Clarification)
    else:
        assert not isinstance(result, Clarification)
        assert [c.name for c in result] == expected


@pytest.mark.parametrize(
    ("alias", "text", "hit"),
    [
        ("expose", "Expose it", True),
        ("expose", "exposed", False),
        ("expose", "re-expose it", False),
        ("set up monitoring", "set  up\tmonitoring", True),
        ("set up monitoring", "reset up monitoring", False),
    ],
)
def test_alias_word_boundaries(alias: str, text: str, hit: bool) -> None:
    assert alias_matches(alias, text) is hit


def ticket(title: str = "t", body: str = "", replies: tuple[str, ...] = ()) -> Ticket:
    return Ticket(number=7, title=title, body=body, author="alice", replies=replies)


def test_key_lines_last_one_wins_and_only_known_keys_count() -> None:
    req = read_request(
        ticket(
            "node: pve9 in the title is prose",
            body="- `node: pve1`\nNote: on pve2\nmemory:   2048  \nname:",
            replies=("node: pve3",),
        ),
        {"node", "memory", "name"},
    )
    assert req.keys == {"node": "pve3", "memory": "2048"}
    assert "node: pve9 in the title is prose" in req.prose
    assert "Note: on pve2" in req.prose
    assert "pve1" not in req.prose


def test_template_lines_are_dropped_from_prose_but_key_lines_are_kept_for_refusal() -> None:
    req = read_request(
        ticket(
            "Create a container for the {{ lookup('pipe','id') }}",
            body="on pve1\nname: {{ x }}\nfor the {% if %} scanner",
        ),
        {"name"},
    )
    assert not has_template(req.prose)
    assert req.prose == "on pve1"
    assert req.dropped == 2
    assert req.keys == {"name": "{{ x }}"}
    assert "Create a container" in req.wording


@pytest.mark.parametrize(
    ("prose", "expected"),
    [
        ("make it accessible at api-scanner.example.com.", ["api-scanner.example.com"]),
        ("at A.Example.COM and b.example.org", ["a.example.com", "b.example.org"]),
        ("see http://x.example.com/path and config.yaml", []),
        ("mail alice@example.com", []),
        ("10.77.0.11 is an address", []),
        ("{{x}}.example.com", []),
    ],
)
def test_domains(prose: str, expected: list[str]) -> None:
    assert domains(prose) == expected


def test_domains_after_a_word() -> None:
    text = "move a.example.com so it is reachable at b.example.com"
    assert domains_after(text, "at|as") == ["b.example.com"]


@pytest.mark.parametrize(
    ("prose", "words", "expected"),
    [
        ("Create a container on pve1 for x", "on", ["pve1"]),
        ("on node pve2.", "on", ["pve2"]),
        ("on the node pve-b, please", "on", ["pve-b"]),
        ("publish on api.example.com", "on", []),
        ("set up monitoring on it", "on", ["it"]),
        ("through proxy2 and via proxy3", "through|via", ["proxy2", "proxy3"]),
    ],
)
def test_tokens_after(prose: str, words: str, expected: list[str]) -> None:
    assert tokens_after(prose, words) == expected


def test_tokens_around_a_noun() -> None:
    assert tokens_around("expose container status-page", "container") == ["status-page"]
    assert tokens_around("expose the status-page container", "container") == ["status-page"]


@pytest.mark.parametrize(
    ("prose", "expected"),
    [
        ("Create a container for the API scanner and make it", "api-scanner"),
        ("for the API scanner.", "api-scanner"),
        ("for the Wiki Search Backend Service at x", "wiki-search-backend"),
        ("for the status-page container", "status-page"),
        ("a container named Billing_DB", "billing-db"),
        ("one called 'grafana'", "grafana"),
        ("for the team platform", None),
        ("for the {{ x }}", None),
        ("nothing here", None),
    ],
)
def test_service_phrase(prose: str, expected: str | None) -> None:
    assert service_phrase(prose) == expected


@pytest.mark.parametrize(
    ("prose", "expected"),
    [("for team platform.", "platform"), ("for the team @sre-eu", "sre-eu"), ("for me", None)],
)
def test_team(prose: str, expected: str | None) -> None:
    assert team(prose) == expected


@pytest.mark.parametrize(
    ("prose", "what", "expected"),
    [
        ("with 2 cores and 2 GB of memory", "cores", [2]),
        ("with 2 cores and 2 GB of memory", "memory", [2048]),
        ("memory of 768 MiB", "memory", [768]),
        ("a 20 GB disk", "disk", [20]),
        ("it listens on port 9000", "service_port", [9000]),
        ("ttl 60", "ttl", [60]),
        ("2 cores, no 4 cores", "cores", [2, 4]),
        ("nothing", "cores", []),
    ],
)
def test_numbers(prose: str, what: str, expected: list[int]) -> None:
    assert numbers(prose, what) == expected


def test_addresses_and_urls() -> None:
    prose = "point it to 10.77.0.50. not 10.77.0.0/24 nor http://10.1.1.1:80/x, ok?"
    assert ipv4s(prose) == ["10.77.0.50"]
    assert urls(prose) == ["http://10.1.1.1:80/x"]
