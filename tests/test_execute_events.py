"""The pure fold of ansible-runner events into a DryRun (no Ansible here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.execute.events import RunnerEvent, RunOutcome, diff_text, module_name, summarize
from bot.execute.request import RunRequest
from bot.model import RunStatus


def request(check: bool = True, timeout_s: int | None = None) -> RunRequest:
    return RunRequest(
        playbook_dir=Path("/p"),
        inventory=Path("/p/inv.yml"),
        limit=("web1", "proxy1"),
        check=check,
        artifact_dir=Path("/a"),
        ident="pr-1-dryrun-abc1234",
        head_sha="h",
        base_sha="b",
        timeout_s=timeout_s,
    )


def outcome(status: str = "successful", rc: int | None = 0) -> RunOutcome:
    return RunOutcome(
        runner_status=status,
        rc=rc,
        duration_s=1.5,
        log_path="/a/x/stdout",
        log_tail="ERROR! the playbook could not be read",
    )


def ev(
    kind: str,
    host: str = "web1",
    task: str = "t",
    action: str = "ansible.builtin.copy",
    res: dict[str, Any] | None = None,
    stdout: str = "",
    **data: Any,
) -> RunnerEvent:
    event_data = {"host": host, "task": task, "resolved_action": action, **data}
    if res is not None:
        event_data["res"] = res
    return RunnerEvent.parse({"event": kind, "stdout": stdout, "event_data": event_data})


def stats(**counts: dict[str, int]) -> RunnerEvent:
    return RunnerEvent.parse({"event": "playbook_on_stats", "event_data": counts})


def test_a_recap_with_no_failure_is_successful() -> None:
    events = [
        ev("runner_on_start"),
        ev("runner_on_ok", res={"changed": True, "diff": [{"before": "a\n", "after": "b\n"}]}),
        stats(ok={"web1": 1}, changed={"web1": 1}, processed={"web1": 1}),
    ]
    run = summarize(events, outcome(), request())
    assert run.status is RunStatus.SUCCESSFUL and run.error is None
    assert [(t.host, t.status) for t in run.tasks] == [("web1", "changed")]
    assert "-a\n+b" in run.tasks[0].diff
    assert run.recap[0].model_dump() == {
        "host": "web1",
        "ok": 1,
        "changed": 1,
        "failed": 0,
        "skipped": 0,
        "unreachable": 0,
    }
    assert run.hosts == ("web1", "proxy1") and run.duration_s == 1.5 and run.check_mode


def test_failures_and_unreachable_hosts_fail_the_run() -> None:
    events = [
        ev("runner_on_failed", res={"msg": "boom", "stderr": "bad", "rc": 2}),
        ev("runner_on_unreachable", host="proxy1", res={"msg": "ssh: connect refused"}),
        stats(failures={"web1": 1}, dark={"proxy1": 1}),
    ]
    run = summarize(events, outcome("failed", 2), request())
    assert run.status is RunStatus.FAILED
    assert [(t.status, t.message) for t in run.failed()] == [
        ("failed", "boom bad (rc 2)"),
        ("unreachable", "ssh: connect refused"),
    ]
    assert {(r.host, r.failed, r.unreachable) for r in run.recap} == {
        ("web1", 1, 0),
        ("proxy1", 0, 1),
    }


def test_no_recap_after_a_task_started_means_unknown() -> None:
    events = [ev("runner_on_start", task="sleep")]
    run = summarize(events, outcome("timeout", 254), request(timeout_s=5))
    assert run.status is RunStatus.UNKNOWN
    assert run.error == (
        "the run ended without a recap (it timed out after 5s): the state of hosts web1, "
        "proxy1 is unknown; the next run will reconcile"
    )
    assert not run.ok


def test_no_recap_before_any_task_is_a_plain_failure_with_the_log_tail() -> None:
    run = summarize([], outcome("failed", 4), request())
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "before any task started (ansible-playbook exited with rc 4)" in run.error
    assert "could not be read" in run.error


def test_an_ignored_failure_is_reported_but_does_not_fail() -> None:
    events = [
        ev(
            "runner_on_failed",
            action="ansible.builtin.uri",
            res={"msg": "refused"},
            ignore_errors=True,
        ),
        stats(ok={"web1": 1}),
    ]
    run = summarize(events, outcome(), request())
    assert run.status is RunStatus.SUCCESSFUL
    (task,) = run.tasks
    assert (task.status, task.message, task.unverified) == ("ok", "failed, ignored: refused", True)


@pytest.mark.parametrize(
    ("event", "check", "unverified"),
    [
        (ev("runner_on_ok", action="ansible.builtin.command", res={"changed": True}), True, True),
        (ev("runner_on_ok", action="shell", res={}), True, True),
        (ev("runner_on_ok", action="ansible.legacy.raw", res={}), True, True),
        (ev("runner_on_ok", action="ansible.builtin.uri", res={}), True, True),
        (ev("runner_on_ok", action="ansible.builtin.command", res={}), False, False),
        (ev("runner_on_ok", action="ansible.builtin.copy", res={}), True, False),
        (
            ev(
                "runner_on_ok",
                action="ansible.builtin.template",
                res={"invocation": {"module_args": {"validate": "nginx -t -c %s"}}},
            ),
            True,
            True,
        ),
        (
            ev(
                "runner_on_ok",
                action="ansible.builtin.template",
                res={"invocation": {"module_args": {"validate": None}}},
            ),
            True,
            False,
        ),
        (
            ev(
                "runner_on_skipped",
                action="mymod",
                stdout='skipping: [web1] => {"changed": false, '
                '"msg": "remote module (mymod) does not support check mode"}',
            ),
            True,
            True,
        ),
        (
            ev(
                "runner_on_skipped",
                stdout='skipping: [web1] => {"false_condition": "not ansible_check_mode"}',
            ),
            True,
            True,
        ),
        (
            ev("runner_on_skipped", stdout='skipping: [web1] => {"false_condition": "x == 1"}'),
            True,
            False,
        ),
        (
            ev(
                "runner_on_skipped",
                action="ansible.builtin.command",
                stdout='skipping: [web1] => {"msg": "/run/x.pid does not exist, matching removes '
                'option"}',
            ),
            True,
            True,
        ),
        (
            ev(
                "runner_on_skipped",
                action="ansible.builtin.command",
                stdout='skipping: [web1] => {"false_condition": "reload_wanted"}',
            ),
            True,
            False,
        ),
    ],
)
def test_unverified_marks_what_check_mode_cannot_vouch_for(
    event: RunnerEvent, check: bool, unverified: bool
) -> None:
    run = summarize([event, stats()], outcome(), request(check=check))
    assert run.tasks[0].unverified is unverified


def test_a_censored_result_yields_no_diff_or_message_but_keeps_changed() -> None:
    censored = {"censored": "the output has been hidden due to the fact that 'no_log: true'"}
    events = [
        ev("runner_on_ok", res=censored, stdout=f"changed: [web1] => {censored}"),
        ev("runner_on_failed", res=censored),
        stats(),
    ]
    ok, failed = summarize(events, outcome(), request()).tasks
    assert (ok.status, ok.diff, ok.message) == ("changed", "", "")
    assert failed.message == "failed (the result is hidden by no_log)"


def test_diff_shapes() -> None:
    assert diff_text({"diff": {"prepared": "--- a\n+++ b\n"}}) == "--- a\n+++ b\n"
    text = diff_text(
        {
            "diff": [
                {
                    "before": {"state": "absent"},
                    "after": {"state": "directory"},
                    "before_header": "/srv/x",
                }
            ],
        }
    )
    assert '-  "state": "absent"' in text and '+  "state": "directory"' in text
    assert text.startswith("--- /srv/x\n+++ after")
    looped = diff_text(
        {
            "results": [
                {"diff": {"before": "", "after": "one\n"}},
                {"diff": {"before": "", "after": "two\n"}, "_ansible_no_log": True},
            ]
        }
    )
    assert "+one" in looped and "two" not in looped


def test_a_template_diff_is_headed_by_its_destination_not_the_temp_file() -> None:
    res = {
        "diff": [
            {
                "before": "",
                "after": "x\n",
                "after_header": "/root/.ansible/tmp/ansible-local-1abc/tmpq/vhost.j2",
            }
        ],
        "invocation": {"module_args": {"dest": "/etc/nginx/sites/a.conf"}},
    }
    assert "+++ /etc/nginx/sites/a.conf" in diff_text(res)


def test_strings_leaving_the_fold_are_redacted() -> None:
    token = "ghp_" + "x" * 36
    failure = {"msg": f"password=hunter2 {token}"}
    events = [ev("runner_on_failed", task=f"push {token}", res=failure), stats()]
    run = summarize(events, outcome(), request())
    dumped = run.model_dump_json()
    assert token not in dumped and "hunter2" not in dumped


@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("ansible.builtin.command", "command"),
        ("ansible.legacy.shell", "shell"),
        ("uri", "uri"),
        ("community.general.proxmox", "community.general.proxmox"),
    ],
)
def test_module_name(action: str, name: str) -> None:
    assert module_name(action) == name
