"""Hostile files on a person's branch, through the ``infrabot`` command: each ends in a failing
validation status on the PR (never in no status, a crash or a hang), nothing is applied, main
does not move, and nothing secret is posted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    ROOT,
    Cli,
    Edit,
    assert_failing_and_never_applied,
    open_pr,
    posted,
    writing,
)

pytestmark = pytest.mark.e2e
STATE = "infra/state"
CONTAINER = f"{STATE}/containers/status-page.yaml"


def alias_bomb(levels: int = 9) -> str:
    lines = ["kind: Host", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_validation_fast(cli: Cli, repo: Path) -> None:
    number = open_pr(cli, repo, writing({f"{STATE}/hosts/bomb.yaml": alias_bomb()}))
    assert f"{STATE}/hosts/bomb.yaml" in posted(cli, number)
    assert_failing_and_never_applied(cli, repo, number)


def test_non_utf8_text_fails_validation(cli: Cli, repo: Path) -> None:
    text = (ROOT / CONTAINER).read_text().replace("owner: platform", "owner: plat\xe9form")
    number = open_pr(cli, repo, writing({CONTAINER: text.encode("latin-1")}))
    assert assert_failing_and_never_applied(cli, repo, number) is None


def _link(rel: str, target: str) -> Edit:
    def edit(tree: Path) -> None:
        path = tree / rel
        path.unlink(missing_ok=True)
        os.symlink(target, path)

    return edit


@pytest.mark.parametrize(
    ("rel", "target"),
    [
        (f"{STATE}/sites/copy.yaml", "status-page.yaml"),  # relative, inside the tree
        (f"{STATE}/sites/policy.yaml", "../../../schemas/policy.yaml"),  # relative, out of state
    ],
    ids=["sibling", "out-of-state"],
)
def test_a_relative_symlink_fails_validation(cli: Cli, repo: Path, rel: str, target: str) -> None:
    number = open_pr(cli, repo, _link(rel, target))
    assert rel in posted(cli, number)
    assert_failing_and_never_applied(cli, repo, number)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd"])
def test_a_symlink_to_etc_passwd_fails_validation_and_is_never_read(
    cli: Cli, repo: Path, target: str
) -> None:
    number = open_pr(cli, repo, _link(f"{STATE}/hosts/passwd.yaml", target))
    text = posted(cli, number)
    assert "root:" not in text and "/bin/" not in text
    assert_failing_and_never_applied(cli, repo, number)


def test_the_working_tree_check_refuses_the_same_link(cli: Cli, repo: Path) -> None:
    os.symlink("/etc/passwd", repo / STATE / "hosts/passwd.yaml")
    code, out = cli("validate")
    assert code == 1 and f"{STATE}/hosts/passwd.yaml" in out and "root:" not in out


GITHUB_TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"
PASSWORD = "hunter2-Correct-Horse-Battery"


def test_a_secret_in_a_state_file_is_never_posted(cli: Cli, repo: Path) -> None:
    text = (ROOT / CONTAINER).read_text()
    leaky = (
        text.replace("gateway: 10.77.0.1", f"gateway: {GITHUB_TOKEN}")
        .replace("hostname: status-page", f'hostname: "password: {PASSWORD}"')
        .replace("cores: 1", f"cores: {AWS_KEY}")
    )
    number = open_pr(cli, repo, writing({CONTAINER: leaky}))
    text = posted(cli, number)
    for secret in (GITHUB_TOKEN, AWS_KEY, PASSWORD):
        assert secret not in text
        assert not any(secret[i : i + 10] in text for i in range(len(secret) - 10))
    code, out = cli("issue", "show", str(number), "--json")  # the trajectory holds no secret
    assert code == 0 and "validate" in out
    assert all(secret not in out for secret in (GITHUB_TOKEN, AWS_KEY, PASSWORD))
    assert_failing_and_never_applied(cli, repo, number)
