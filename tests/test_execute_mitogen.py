"""The opt-in Mitogen strategy: the same runs, the same results, through mitogen_free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bot.execute.ansible as ansible_module
from bot.execute import AnsibleRunner, RunRequest
from bot.execute.environment import child_env
from bot.model import RunStatus

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: write the file
      ansible.builtin.copy:
        dest: "{target}/{{{{ inventory_hostname }}}}.txt"
        content: "hi\\n"
"""


def request(tmp: Path, check: bool) -> RunRequest:
    content = tmp / "ansible"
    content.mkdir(exist_ok=True)
    (content / "site.yml").write_text(PLAY.format(target=tmp))
    (content / "ansible.cfg").write_text("[defaults]\nstrategy = free\n")
    inventory = tmp / "inventory.yml"
    inventory.write_text(
        "all:\n  vars:\n    ansible_connection: local\n"
        '    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
        "  hosts:\n    web1: {}\n    web2: {}\n"
    )
    return RunRequest(
        playbook_dir=content,
        inventory=inventory,
        limit=("web1", "web2"),
        check=check,
        artifact_dir=tmp / "artifacts",
        ident=f"mitogen-{'check' if check else 'apply'}",
    )


def test_the_environment_names_mitogen_only_when_asked(tmp_path: Path) -> None:
    plain = child_env({}, tmp_path, tmp_path, tmp_path)
    assert "ANSIBLE_STRATEGY" not in plain and "ANSIBLE_STRATEGY_PLUGINS" not in plain
    chosen = child_env({}, tmp_path, tmp_path, tmp_path, tmp_path / "plugins")
    assert chosen["ANSIBLE_STRATEGY"] == "mitogen_free"
    assert chosen["ANSIBLE_STRATEGY_PLUGINS"] == str(tmp_path / "plugins")


def test_without_mitogen_installed_the_run_does_not_start_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ansible_module, "mitogen_strategy_plugins", lambda: None)
    run = AnsibleRunner(strategy="mitogen").run(request(tmp_path, check=True))
    assert run.status is not RunStatus.SUCCESSFUL
    assert run.error is not None and "pip install 'infrabot[mitogen]'" in run.error
    assert not (tmp_path / "web1.txt").exists()


@pytest.mark.integration
def test_mitogen_predicts_what_the_default_does_and_applies_it(tmp_path: Path) -> None:
    assert ansible_module.mitogen_strategy_plugins() is not None, "pip install -e '.[dev]'"
    predicted = {}
    for strategy in ("free", "mitogen"):
        (tmp_path / strategy).mkdir()
        req = request(tmp_path / strategy, check=True)
        run = AnsibleRunner(strategy=strategy).run(req)
        assert run.status is RunStatus.SUCCESSFUL, run.error
        predicted[strategy] = sorted((t.host, t.task) for t in run.changed())
        ran_with = json.loads((req.run_dir / "command").read_text())["env"]
        assert ran_with.get("ANSIBLE_STRATEGY", "free") == {"free": "free"}.get(
            strategy, "mitogen_free"
        )
    assert (
        predicted["free"]
        == predicted["mitogen"]
        == [
            ("web1", "write the file"),
            ("web2", "write the file"),
        ]
    )
    applied = AnsibleRunner(strategy="mitogen").run(request(tmp_path / "mitogen", check=False))
    assert (tmp_path / "mitogen" / "web1.txt").read_text() == "hi\n"
    assert (tmp_path / "mitogen" / "web2.txt").read_text() == "hi\n"
    assert sorted((r.host, r.changed, r.failed) for r in applied.recap) == [
        ("web1", 1, 0),
        ("web2", 1, 0),
    ]
