"""The Ansible content parses, and the local path never needs community.general."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_localestate import ANSIBLE_DIR, local_host, run_playbook, write_inventory

pytestmark = pytest.mark.integration


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    hosts = {"n1": local_host(tmp_path, "n1", ["node", "proxy", "dns", "monitoring"])}
    return write_inventory(tmp_path / "inventory.yml", hosts)


def test_syntax_check_passes(inventory: Path) -> None:
    run = run_playbook("site.yml", inventory, "--syntax-check")
    assert run.rc == 0, run.output


def test_proxmox_tasks_are_only_included_for_proxmox_nodes() -> None:
    """Statically importing them would make every run need the collection."""
    tasks = (ANSIBLE_DIR / "roles/node/tasks/main.yml").read_text()
    assert "include_tasks: proxmox.yml" in tasks and "import_tasks" not in tasks
    assert "infrabot_provider | default('local') == 'proxmox'" in tasks
    proxmox = (ANSIBLE_DIR / "roles/node/tasks/proxmox.yml").read_text()
    assert proxmox.count("no_log: true") == proxmox.count("api_token_secret:")


def test_no_task_uses_run_once() -> None:
    """site.yml's play uses `strategy: free`, under which `run_once` misbehaves; .ansible-lint
    skips run-once[play] on the strength of this test."""
    files = [*ANSIBLE_DIR.rglob("*.yml"), *ANSIBLE_DIR.rglob("*.yaml")]
    assert files and not [f for f in files if "run_once" in f.read_text()]


def test_every_service_config_is_validated_before_it_lands() -> None:
    """Each template that writes an nginx or dnsmasq file carries a `validate:`."""
    for role, count in (("proxy", 1), ("dns", 2)):
        lines = (ANSIBLE_DIR / f"roles/{role}/tasks/main.yml").read_text().splitlines()
        keys = [line.strip().split(":")[0] for line in lines if not line.strip().startswith("#")]
        assert keys.count("ansible.builtin.template") == count
        assert keys.count("validate") == count, role
