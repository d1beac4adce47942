"""Findings are posted on the PR: they never carry a secret from the desired state.

A finding quotes at most a short prefix of a value, names control characters instead of
printing them, and passes the redactor, whichever check wrote it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.validate import validate_tree
from bot.validate.excerpt import PREFIX, quote
from bot.validate.render import render_report_markdown

STATE = "infra/state"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
PASSWORD = "password=Tr0ub4dor&3-correct-horse"


def container(**fields: str) -> str:
    base = {
        "kind": "Container",
        "name": "leaky",
        "owner": "platform",
        "node": "pve1",
        "vmid": "150",
        "hostname": "leaky",
        "ip": "10.77.0.50/24",
    }
    return "".join(f"{k}: {v}\n" for k, v in (base | fields).items())


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (container(gateway=GITHUB_TOKEN), GITHUB_TOKEN),
        (container(gateway=AWS_KEY), AWS_KEY),
        (container(gateway=f'"{PASSWORD}"'), PASSWORD),
        (container(hostname=f'"{PASSWORD}"'), PASSWORD),
        (container(cores=GITHUB_TOKEN), GITHUB_TOKEN),  # a type error quotes the value too
        (container(**{GITHUB_TOKEN: "1"}), GITHUB_TOKEN),  # an unknown field, by its key
        (container(template="'{{ " + GITHUB_TOKEN + " }}'"), GITHUB_TOKEN),  # policy check
        ("kind: " + GITHUB_TOKEN + "\nname: x\n", GITHUB_TOKEN),  # unknown kind
    ],
    ids=["github-token", "aws-key", "password", "hostname", "type", "key", "template", "kind"],
)
def test_no_finding_carries_the_secret(seed_tree: Path, text: str, secret: str) -> None:
    (seed_tree / STATE / "containers/leaky.yaml").write_text(text)
    report = validate_tree(seed_tree)
    assert not report.ok
    posted = render_report_markdown(report) + "".join(
        f"{f.message} {f.path or ''}" for f in report.findings
    )
    assert secret not in posted
    # not even a long stretch of it: at most the short prefix a finding may quote
    assert not any(secret[i : i + PREFIX + 1] in posted for i in range(len(secret) - PREFIX))


def test_quote_shows_a_prefix_and_names_no_control_character() -> None:
    assert quote("10.77.0.300") == "'10.77.0.…'"
    assert quote("short") == "'short'"
    assert quote("ab\ncd") == "'abcd'"
    assert quote({"password": "x"}) == "a mapping" and quote([1, 2]) == "a list of 2"
    assert quote(10**5000) == "a number"


def test_a_trailing_newline_is_named(seed_tree: Path) -> None:
    site = seed_tree / STATE / "sites/status-page.yaml"
    text = site.read_text().replace("domain: status.example.com", 'domain: "x.example\\n"')
    site.write_text(text)
    report = validate_tree(seed_tree)
    messages = [f.message for f in report.errors() if f.path == "$.domain"]
    assert messages and "U+000A (LINE FEED) at character 10" in messages[0]
