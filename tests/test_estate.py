"""Estate: round-trip edits, the inventory contract, and the blast radius."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.errors import InputError
from bot.estate import apply_changes, blast_radius, build_estate, compile_inventory, read_documents
from bot.model import ChangeSet, ResourceChange


def estate(root: Path):  # type: ignore[no-untyped-def]
    return build_estate(read_documents(root)[0])


def change(action: str, kind: str, name: str, **data: object) -> ChangeSet:
    doc = {"kind": kind, "name": name, **data}
    return ChangeSet(
        changes=(ResourceChange(action=action, kind=kind, name=name, data=doc),), summary="test"
    )


def test_seed_estate_parses_every_document(seed_tree: Path) -> None:
    docs, findings = read_documents(seed_tree)
    assert findings == []
    assert len(build_estate(docs).resources) == len(docs)


def test_update_keeps_comments_order_and_quoting(seed_tree: Path) -> None:
    path = seed_tree / "infra/state/containers/status-page.yaml"
    before = path.read_text()
    container = estate(seed_tree).get("Container", "status-page")
    assert container is not None
    data = container.model_dump(mode="json", exclude_none=True) | {"cores": 4}
    written = apply_changes(
        seed_tree,
        change(
            "update",
            "Container",
            "status-page",
            **{k: v for k, v in data.items() if k not in ("kind", "name")},
        ),
    )
    after = path.read_text()
    assert written == ["infra/state/containers/status-page.yaml"]
    assert "memory: 512  # MiB" in after and "disk: 4      # GiB" in after
    assert after.replace("cores: 4", "cores: 1").splitlines()[:10] == before.splitlines()[:10]
    site = seed_tree / "infra/state/sites/status-page.yaml"
    assert 'upstream: "http://10.77.0.10:8080"' in site.read_text()  # untouched, still quoted


def test_update_in_a_multi_document_file_touches_only_that_document(seed_tree: Path) -> None:
    path = seed_tree / "infra/state/hosts/local.yaml"
    proxy = estate(seed_tree).get("Host", "proxy1")
    assert proxy is not None
    data = proxy.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data |= {"roles": ["proxy"], "ports": {"http": 18099}, "connection": "local"}
    apply_changes(
        seed_tree,
        change(
            "update",
            "Host",
            "proxy1",
            **{k: v for k, v in data.items() if k not in ("kind", "name")},
        ),
    )
    text = path.read_text()
    assert text.startswith("# The local estate")
    assert "http: 18099" in text and text.count("kind: Host") == 4
    assert estate(seed_tree).get("Host", "dns1") is not None


def test_create_writes_a_new_file_and_refuses_a_duplicate(seed_tree: Path) -> None:
    cs = change(
        "create", "DnsRecord", "new.example.com", value="127.0.0.1", server="dns1", owner="t"
    )
    assert apply_changes(seed_tree, cs) == ["infra/state/dns/new.example.com.yaml"]
    doc = YAML(typ="safe").load((seed_tree / "infra/state/dns/new.example.com.yaml").read_text())
    assert list(doc)[:2] == ["kind", "name"]
    with pytest.raises(InputError, match="already exists"):
        apply_changes(seed_tree, cs)


def test_delete_removes_the_file_when_it_held_one_document(seed_tree: Path) -> None:
    apply_changes(seed_tree, change("delete", "Site", "status-page"))
    assert not (seed_tree / "infra/state/sites/status-page.yaml").exists()
    with pytest.raises(InputError, match="not found"):
        apply_changes(seed_tree, change("delete", "Site", "status-page"))


def test_a_failed_change_set_writes_nothing(seed_tree: Path) -> None:
    before = {p: p.read_text() for p in (seed_tree / "infra/state").rglob("*.yaml")}
    cs = ChangeSet(
        summary="t",
        changes=(
            ResourceChange(
                action="create",
                kind="DnsRecord",
                name="x.example.com",
                data={
                    "kind": "DnsRecord",
                    "name": "x.example.com",
                    "value": "1.2.3.4",
                    "server": "dns1",
                },
            ),
            ResourceChange(action="delete", kind="Site", name="missing", data={}),
        ),
    )
    with pytest.raises(InputError):
        apply_changes(seed_tree, cs)
    after = {p: p.read_text() for p in (seed_tree / "infra/state").rglob("*.yaml")}
    assert after == before


@pytest.mark.parametrize(
    ("kind", "name", "field", "value", "hosts"),
    [
        ("Site", "status-page", "upstream", "http://10.77.0.10:9000", ("proxy1",)),
        ("DnsRecord", "status.example.com", "ttl", 60, ("dns1",)),
        ("Container", "status-page", "cores", 2, ("pve1",)),
        ("MonitoringTarget", "status-page", "probe", "http://status.example.com/x", ("mon1",)),
    ],
)
def test_blast_radius_is_the_hosts_a_change_lands_on(
    seed_tree: Path, kind: str, name: str, field: str, value: object, hosts: tuple[str, ...]
) -> None:
    before = estate(seed_tree)
    resource = before.get(kind, name)
    assert resource is not None
    data = resource.model_dump(mode="json", exclude_none=True) | {field: value}
    apply_changes(
        seed_tree,
        change(
            "update", kind, name, **{k: v for k, v in data.items() if k not in ("kind", "name")}
        ),
    )
    assert blast_radius(before, estate(seed_tree)) == hosts


def test_moving_a_site_touches_both_proxies(seed_tree: Path) -> None:
    before = estate(seed_tree)
    apply_changes(
        seed_tree,
        change(
            "create",
            "Host",
            "proxy2",
            address="127.0.0.2",
            roles=["proxy"],
            connection="local",
            owner="p",
        ),
    )
    mid = estate(seed_tree)
    site = mid.get("Site", "status-page")
    assert site is not None
    data = site.model_dump(mode="json", exclude_none=True) | {"proxy": "proxy2"}
    apply_changes(
        seed_tree,
        change(
            "update",
            "Site",
            "status-page",
            **{k: v for k, v in data.items() if k not in ("kind", "name")},
        ),
    )
    assert blast_radius(mid, estate(seed_tree)) == ("proxy1", "proxy2")
    assert blast_radius(before, before) == ()


def test_inventory_marks_every_desired_state_string_unsafe(seed_tree: Path) -> None:
    apply_changes(
        seed_tree,
        change(
            "create",
            "MonitoringTarget",
            "evil",
            monitor="mon1",
            targets=["evil.example.com:80"],
            labels={"team": "{{ lookup('pipe', 'id') }}"},
        ),
    )
    text = compile_inventory(estate(seed_tree), Path("/run/x"))
    line = next(x for x in text.splitlines() if "lookup" in x)
    assert "!unsafe" in line
    assert text.count('"{{ ansible_playbook_python }}"') == 4  # the bot's own, trusted
    hosts = YAML(typ="safe").load(text.replace("!unsafe ", ""))["all"]["hosts"]
    assert hosts["proxy1"]["infrabot_sites"][0]["domain"] == "status.example.com"
    assert hosts["pve1"]["infrabot_containers"][0]["ip"] == "10.77.0.10/24"
    assert hosts["dns1"]["infrabot_root"] == "/run/x/dns1"


def test_next_free_vmid_and_ip(seed_tree: Path) -> None:
    e = estate(seed_tree)
    assert e.next_vmid() == 101
    assert str(e.next_ip("pve1")) == "10.77.0.11/24"


def test_an_inventory_can_hold_only_the_hosts_a_run_needs(seed_tree: Path) -> None:
    text = compile_inventory(estate(seed_tree), Path("/run/x"), only={"proxy1"})
    hosts = YAML(typ="safe").load(text.replace("!unsafe ", ""))["all"]["hosts"]
    assert list(hosts) == ["proxy1"]
    assert hosts["proxy1"]["infrabot_sites"][0]["name"] == "status-page"
