"""validate_tree on temporary copies of the repository's seed state, mutated one way per case."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import bot.validate.schema as schema_module
from bot.errors import InfrabotError
from bot.model import ValidationReport
from bot.validate import validate_tree

REPO = Path(__file__).resolve().parents[1]
STATE = "infra/state"
CONTAINER = f"{STATE}/containers/status-page.yaml"
SITE = f"{STATE}/sites/status-page.yaml"
DNS = f"{STATE}/dns/status.example.com.yaml"
MONITORING = f"{STATE}/monitoring/status-page.yaml"
HOSTS = f"{STATE}/hosts/local.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for folder in (STATE, "schemas"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / ".yamllint", tmp_path / ".yamllint")
    return tmp_path


def replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    return mutate


def write(rel: str, text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    return mutate


def delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


SECOND_CONTAINER = """\
kind: Container
name: second
owner: platform
node: pve1
vmid: 101
hostname: second
ip: 10.77.0.11/24
"""


def second_container(**changes: str) -> Callable[[Path], None]:
    text = SECOND_CONTAINER
    for key, value in changes.items():
        text = "\n".join(
            f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()
        )
    return write(f"{STATE}/containers/second.yaml", text + "\n")


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Path], None]
    check: str
    file: str | None
    message: str
    line: int | None = None
    path: str | None = None
    severity: str = "error"


CASES = [
    Case(
        "malformed yaml",
        write(f"{STATE}/containers/broken.yaml", "kind: Container\nname: [oops\nnode: pve1\n"),
        "yaml",
        f"{STATE}/containers/broken.yaml",
        "malformed YAML",
        line=3,
    ),
    Case(
        "memory not an integer",
        replace(CONTAINER, "memory: 512  # MiB", "memory: lots"),
        "schema",
        CONTAINER,
        "'lots' is not of type 'integer'",
        line=9,
        path="$.memory",
    ),
    Case(
        "bad ipv4",
        replace(CONTAINER, "gateway: 10.77.0.1", "gateway: 10.77.0.300"),
        "schema",
        CONTAINER,
        "'10.77.0.…' is not a 'ipv4'",
        line=12,
        path="$.gateway",
    ),
    Case(
        "bad ipv4 in a DNS A record",
        replace(DNS, "value: 127.0.0.1", "value: 127.0.0"),
        "schema",
        DNS,
        "is not a 'ipv4'",
        line=6,
        path="$.value",
    ),
    Case(
        "bad hostname",
        replace(CONTAINER, "hostname: status-page", "hostname: status_page!"),
        "schema",
        CONTAINER,
        "is not a 'hostname'",
        line=7,
        path="$.hostname",
    ),
    Case(
        "bad uri",
        replace(MONITORING, "probe: http://status.example.com/", "probe: http://status example/"),
        "schema",
        MONITORING,
        "is not a 'uri'",
        line=7,
        path="$.probe",
    ),
    Case(
        "unknown field",
        replace(CONTAINER, "cores: 1", "cores: 1\ncolour: blue"),
        "schema",
        CONTAINER,
        "unknown field 'colour': allowed are cores, description",
        line=9,
        path="$.colour",
    ),
    Case(
        "nested path",
        replace(HOSTS, "http: 18080", "http: 99999"),
        "schema",
        HOSTS,
        "99999 is greater than the maximum of 65535",
        line=20,
        path="$.ports.http",
    ),
    Case(
        "unknown kind",
        write(f"{STATE}/misc/gadget.yaml", "kind: Gadget\nname: g\nowner: x\n"),
        "schema",
        f"{STATE}/misc/gadget.yaml",
        "unknown kind 'Gadget': expected one of Container, DnsRecord, Host, MonitoringTarget, Site",
        line=1,
        path="$.kind",
    ),
    Case(
        "missing kind",
        write(f"{STATE}/misc/nokind.yaml", "name: g\nowner: x\n"),
        "schema",
        f"{STATE}/misc/nokind.yaml",
        "no `kind`: expected one of Container, DnsRecord",
        line=1,
    ),
    Case(
        "not a mapping",
        write(f"{STATE}/misc/list.yaml", "- kind: Host\n"),
        "schema",
        f"{STATE}/misc/list.yaml",
        "the document is a list, not a mapping of resource fields: expected one of Container",
        line=1,
        path="$",
    ),
    Case(
        "duplicate key",
        replace(CONTAINER, "cores: 1", "cores: 1\ncores: 2"),
        "yaml",
        CONTAINER,
        'found duplicate key "cores"',
        line=9,
    ),
    Case(
        "missing host",
        replace(CONTAINER, "node: pve1", "node: pve9"),
        "references",
        CONTAINER,
        "Container 'status-page': node 'pve9' is not a Host (hosts: dns1, mon1, proxy1, pve1)",
        line=5,
        path="$.node",
    ),
    Case(
        "host with the wrong role",
        replace(SITE, "proxy: proxy1", "proxy: dns1"),
        "references",
        SITE,
        f"must be a Host with role 'proxy', but its roles are dns ({HOSTS})",
        line=7,
        path="$.proxy",
    ),
    Case(
        "duplicate IP",
        second_container(ip="10.77.0.10/24"),
        "references",
        CONTAINER,
        f"duplicate IP 10.77.0.10: {STATE}/containers/second.yaml and {CONTAINER}",
        line=11,
        path="$.ip",
    ),
    Case(
        "ssh host on a container's IP",
        write(
            f"{STATE}/hosts/remote.yaml",
            "kind: Host\nname: far\nowner: x\naddress: 10.77.0.10\n"
            "connection: ssh\nroles: [node]\n",
        ),
        "references",
        f"{STATE}/hosts/remote.yaml",
        f"duplicate IP 10.77.0.10: {CONTAINER} and {STATE}/hosts/remote.yaml",
        line=4,
        path="$.address",
    ),
    Case(
        "duplicate vmid",
        second_container(vmid="100"),
        "references",
        CONTAINER,
        f"duplicate vmid 100: {STATE}/containers/second.yaml and {CONTAINER}",
        line=6,
        path="$.vmid",
    ),
    Case(
        "duplicate hostname",
        second_container(hostname="Status-Page"),
        "references",
        CONTAINER,
        "duplicate hostname 'status-page'",
        path="$.hostname",
    ),
    Case(
        "duplicate name in one file",
        replace(HOSTS, "name: dns1", "name: proxy1"),
        "references",
        HOSTS,
        f"duplicate Host 'proxy1': {HOSTS}:13 and {HOSTS}:23",
        line=23,
        path="$.name",
    ),
    Case(
        "site without DNS record",
        delete(DNS),
        "references",
        SITE,
        "Site 'status-page' serves status.example.com, but no DnsRecord is named",
        line=5,
        path="$.domain",
    ),
    Case(
        "missing owner",
        replace(SITE, "owner: platform\n", ""),
        "policy",
        SITE,
        "Site 'status-page' has no owner",
        line=1,  # no owner line: the document's first
        path="$.owner",
    ),
    Case(
        "blank owner",
        replace(SITE, "owner: platform\n", 'owner: "  "\n'),
        "policy",
        SITE,
        "Site 'status-page' has no owner",
        line=3,  # the owner line itself
        path="$.owner",
    ),
    Case(
        "jinja in a value",
        replace(CONTAINER, "cores: 1", "description: \"{{ lookup('pipe', 'id') }}\"\ncores: 1"),
        "policy",
        CONTAINER,
        "contains the template marker '{{': desired state is data, never a template",
        line=8,
        path="$.description",
    ),
    Case(
        "jinja statement in a list item",
        replace(MONITORING, 'targets: ["10.77.0.10:8080"]', 'targets: ["{% raw %}"]'),
        "policy",
        MONITORING,
        "template marker '{%'",
        path="$.targets[0]",
    ),
    Case(
        "a tagged value",
        replace(CONTAINER, "cores: 1", 'description: !unsafe "{# x #}"\ncores: 1'),
        "yaml",
        CONTAINER,
        "tag !unsafe: tags are refused",
        line=8,
    ),
    Case(
        "trailing spaces",
        replace(SITE, "proxy: proxy1", "proxy: proxy1   "),
        "yamllint",
        SITE,
        "trailing spaces [trailing-spaces]",
        line=7,
    ),
    Case(
        "yamllint warning",
        replace(SITE, "proxy: proxy1", "proxy: proxy1 #main"),
        "yamllint",
        SITE,
        "missing starting space in comment [comments]",
        line=7,
        severity="warning",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_problem_is_found_where_it_is(repo: Path, case: Case) -> None:
    case.mutate(repo)
    report = validate_tree(repo)
    matches = [f for f in report.findings if f.check == case.check and case.message in f.message]
    assert matches, "\n".join(f"{f.check} {f.location()} {f.message}" for f in report.findings)
    found = matches[0]
    assert found.file == case.file
    assert found.severity == case.severity
    if case.line is not None:
        assert found.line == case.line
    if case.path is not None:
        assert found.path == case.path
    assert report.ok is (case.severity == "warning")


def test_the_seed_state_is_clean(repo: Path) -> None:
    report = validate_tree(repo, changed_files=[CONTAINER], now=datetime(2026, 1, 1, tzinfo=UTC))
    assert report.findings == ()
    assert report.checks == (
        "yaml",
        "yamllint",
        "schema",
        "pydantic",
        "references",
        "policy",
        "paths",
    )


def test_the_checked_in_tree_is_clean() -> None:
    assert validate_tree(REPO).findings == ()


def test_changed_file_outside_desired_state(repo: Path) -> None:
    report = validate_tree(repo, changed_files=[SITE, "infra/ansible/site.yml"])
    assert [(f.check, f.file, f.message) for f in report.findings] == [
        (
            "paths",
            "infra/ansible/site.yml",
            "infra/ansible/site.yml is outside the desired-state paths (infra/state/**): "
            "a bot change may only edit desired state",
        )
    ]
    assert "paths" not in validate_tree(repo).checks


def test_every_problem_is_reported_at_once(repo: Path) -> None:
    for mutate in (
        write(f"{STATE}/containers/broken.yaml", "a: [\n"),
        replace(CONTAINER, "memory: 512  # MiB", "memory: lots"),
        replace(SITE, "proxy: proxy1", "proxy: nowhere   "),
        replace(DNS, "owner: platform\n", ""),
    ):
        mutate(repo)
    report = validate_tree(repo, changed_files=["bot/cli.py"])
    assert {f.check for f in report.findings} == {
        "yaml",
        "yamllint",
        "schema",
        "references",
        "policy",
        "paths",
    }
    order = [f.check for f in report.findings]
    assert order == sorted(order, key=report.checks.index)


def test_a_parse_error_is_not_reported_twice(repo: Path) -> None:
    write(f"{STATE}/containers/broken.yaml", "kind: Container\nname: [oops\n")(repo)
    report = validate_tree(repo)
    assert [f.check for f in report.findings] == ["yaml"]


def test_schema_and_model_disagreement_is_a_finding(repo: Path) -> None:
    path = repo / "schemas/Container.schema.json"
    schema = json.loads(path.read_text())
    del schema["properties"]["vmid"]["minimum"]
    path.write_text(json.dumps(schema))
    replace(CONTAINER, "vmid: 100", "vmid: 5")(repo)
    report = validate_tree(repo)
    (finding,) = report.findings
    assert finding.check == "pydantic"
    assert (finding.file, finding.line, finding.path) == (CONTAINER, 6, "$.vmid")
    assert "schemas/ and bot/model disagree" in finding.message


def test_without_a_yamllint_config_the_default_applies(repo: Path) -> None:
    (repo / ".yamllint").unlink()
    report = validate_tree(repo)
    assert {f.check for f in report.findings} == {"yamllint"}
    starts = [f for f in report.findings if "[document-start]" in f.message]
    assert {f.severity for f in starts} == {"warning"}  # the repo's config disables this rule
    assert any("[line-length]" in f.message for f in report.findings)  # default max is 80


def test_a_broken_yamllint_config_is_a_finding(repo: Path) -> None:
    (repo / ".yamllint").write_text("rules: {no-such-rule: enable}\n")
    report = validate_tree(repo)
    config = [f for f in report.findings if f.file == ".yamllint"]
    assert len(config) == 1
    assert "no such rule" in config[0].message


def test_freeze_window_is_a_warning(repo: Path) -> None:
    policy = repo / "schemas/policy.yaml"
    policy.write_text(
        policy.read_text().replace(
            "freeze_windows: []",
            "freeze_windows:\n  - {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z,"
            " reason: holidays}",
        )
    )
    inside = validate_tree(repo, now=datetime(2026, 12, 25, tzinfo=UTC))
    assert inside.ok
    (warning,) = inside.findings
    assert (warning.check, warning.severity) == ("policy", "warning")
    assert "holidays" in warning.message
    assert validate_tree(repo, now=datetime(2026, 12, 28, tzinfo=UTC)).findings == ()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: shutil.rmtree(root / "schemas"), "schemas/ has no resource *.schema.json"),
        (
            lambda root: (root / "schemas/Site.schema.json").write_text("{"),
            "schemas/Site.schema.json: cannot read the schema",
        ),
        (
            lambda root: (root / "schemas/Site.schema.json").write_text(
                '{"type": 5, "properties": {"kind": {"const": "Site"}}}'
            ),
            "schemas/Site.schema.json: not a valid JSON Schema",
        ),
        (
            lambda root: (root / "schemas/policy.yaml").write_text("require_owner: [\n"),
            "schemas/policy.yaml: malformed YAML",
        ),
        (
            lambda root: (root / "schemas/policy.yaml").write_text("require_owners: true\n"),
            "schemas/policy.yaml: require_owners: Extra inputs are not permitted",
        ),
        (
            lambda root: (root / "schemas/policy.yaml").unlink(),
            "schemas/policy.yaml: cannot read the policy",
        ),
    ],
)
def test_broken_schemas_raise_one_clear_line(
    repo: Path, breakage: Callable[[Path], Any], message: str
) -> None:
    breakage(repo)
    with pytest.raises(InfrabotError) as raised:
        validate_tree(repo)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_format_nobody_can_check_is_refused(repo: Path) -> None:
    path = repo / "schemas/Site.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["domain"]["format"] = "no-such-format"
    path.write_text(json.dumps(schema))
    with pytest.raises(InfrabotError, match="format no-such-format cannot be checked"):
        validate_tree(repo)


def test_each_validator_is_built_once_per_call(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        second_container(
            name=f"extra{i}", vmid=str(200 + i), hostname=f"extra{i}", ip=f"10.77.0.{50 + i}/24"
        )(repo)
        (repo / f"{STATE}/containers/second.yaml").rename(repo / f"{STATE}/containers/x{i}.yaml")
    real = schema_module.StrictValidator
    built: list[str] = []

    class Counting:
        FORMAT_CHECKER = real.FORMAT_CHECKER
        check_schema = staticmethod(real.check_schema)

        def __new__(cls, schema: dict[str, Any], **kwargs: Any) -> Any:
            built.append(schema["title"])
            return real(schema, **kwargs)

    monkeypatch.setattr(schema_module, "StrictValidator", Counting)
    assert validate_tree(repo).findings == ()
    assert sorted(built) == ["Container", "DnsRecord", "Host", "MonitoringTarget", "Site"]


def test_report_is_a_value(repo: Path) -> None:
    assert isinstance(validate_tree(repo), ValidationReport)


def test_an_invalid_resource_is_not_also_reported_missing(repo: Path) -> None:
    replace(DNS, "value: 127.0.0.1", "value: nope")(repo)
    replace(HOSTS, "roles: [proxy]", "roles: [proxy, gardener]")(repo)
    report = validate_tree(repo)
    assert {(f.check, f.file, f.path) for f in report.findings} == {
        ("schema", DNS, "$.value"),
        ("schema", HOSTS, "$.roles[1]"),
    }
