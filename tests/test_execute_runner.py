"""The real adapter: ansible-runner driving ansible-playbook on small local playbooks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import bot.execute.ansible
from bot.errors import InfrabotError
from bot.execute import AnsibleRunner, FakeRunner, RunRequest, guard
from bot.model import DryRun, RunStatus, TaskResult

pytestmark = pytest.mark.integration

SECRET = "Zq8-no-log-value-51e7"  # plain: nothing redact() would recognise

LIBRARY_MODULE = """\
from ansible.module_utils.basic import AnsibleModule
AnsibleModule(argument_spec={}, supports_check_mode=False).exit_json(changed=True)
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def inventory(tmp: Path) -> Path:
    return write(
        tmp / "inventory.yml",
        f"""\
        all:
          vars:
            ansible_connection: local
            ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
          hosts:
            web1:
              db_password: "{SECRET}"
            web2: {{}}
        """,
    )


def request(tmp: Path, site_yml: str, check: bool = True, **kw: object) -> RunRequest:
    content = tmp / "ansible"
    write(content / "site.yml", site_yml)
    fields: dict[str, object] = {
        "playbook_dir": content,
        "inventory": inventory(tmp),
        "limit": ("web1",),
        "check": check,
        "artifact_dir": tmp / "artifacts",
        "ident": "pr-1-dryrun-abc1234",
        "head_sha": "abc1234",
        "base_sha": "0123456",
    }
    fields.update(kw)
    return RunRequest.model_validate(fields)


def by_task(run: DryRun) -> dict[str, TaskResult]:
    return {t.task: t for t in run.tasks}


def files_containing(root: Path, *needles: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.fixture(scope="module")
def check_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DryRun, Path, list[str]]:
    tmp = tmp_path_factory.mktemp("check")
    target = tmp / "out"
    write(tmp / "ansible" / "library" / "nocheck.py", LIBRARY_MODULE)
    write(tmp / "ansible" / "vhost.j2", "server_name {{ inventory_hostname }};\n")
    req = request(
        tmp,
        f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: write the file
              ansible.builtin.copy: {{dest: "{target}/plain.txt", content: "hello\\n"}}
            - name: run a command
              ansible.builtin.command: echo hi
            - name: render with validate
              ansible.builtin.template:
                {{src: vhost.j2, dest: "{target}/v.conf", validate: "test -s %s"}}
            - name: render without validate
              ansible.builtin.template: {{src: vhost.j2, dest: "{target}/w.conf"}}
            - name: a module without check mode
              nocheck:
            - name: only on a real run
              ansible.builtin.debug: {{msg: hi}}
              when: not ansible_check_mode
            - name: never
              ansible.builtin.debug: {{msg: hi}}
              when: false
        """,
    )
    target.mkdir()
    seen: list[str] = []
    return AnsibleRunner().run(req, seen.append), target, seen


def test_check_mode_reports_a_change_with_its_diff_without_making_it(
    check_run: tuple[DryRun, Path, list[str]],
) -> None:
    run, target, _ = check_run
    assert run.status is RunStatus.SUCCESSFUL, run.error
    task = by_task(run)["write the file"]
    assert (task.status, task.unverified) == ("changed", False)
    assert f"+++ {target}/plain.txt" in task.diff and "+hello" in task.diff
    assert not (target / "plain.txt").exists()
    assert run.check_mode and run.hosts == ("web1",) and run.head_sha == "abc1234"
    assert [(r.host, r.changed) for r in run.recap] == [("web1", 3)]


def test_what_check_mode_cannot_vouch_for_is_unverified(
    check_run: tuple[DryRun, Path, list[str]],
) -> None:
    tasks = by_task(check_run[0])
    unverified = {name for name, t in tasks.items() if t.unverified}
    assert unverified == {
        "run a command",
        "render with validate",
        "a module without check mode",
        "only on a real run",
    }
    assert tasks["render with validate"].status == "changed"
    assert tasks["a module without check mode"].status == "skipped"
    assert "does not support check mode" in tasks["a module without check mode"].message
    assert tasks["never"].status == "skipped"


def test_progress_names_each_task_as_it_starts(check_run: tuple[DryRun, Path, list[str]]) -> None:
    assert check_run[2][:2] == ["web1: write the file", "web1: run a command"]
    assert len(check_run[2]) == 7


def test_the_full_log_is_kept_where_log_path_says(
    check_run: tuple[DryRun, Path, list[str]],
) -> None:
    run = check_run[0]
    assert run.log_path is not None and run.log_path.endswith("pr-1-dryrun-abc1234/stdout")
    assert "PLAY RECAP" in Path(run.log_path).read_text()
    assert run.duration_s > 0


def test_an_apply_makes_the_change(tmp_path: Path) -> None:
    req = request(
        tmp_path,
        f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: write the file
              ansible.builtin.copy:
                dest: "{tmp_path}/{{{{ inventory_hostname }}}}.txt"
                content: "{{{{ greeting }}}}"
            - name: run a command
              ansible.builtin.command: echo hi
        """,
        check=False,
        limit=("web1", "web2"),
        extravars={"greeting": "hello from extravars"},
    )
    run = AnsibleRunner().run(req)
    assert run.status is RunStatus.SUCCESSFUL and not run.check_mode
    assert (tmp_path / "web2.txt").read_text() == "hello from extravars"
    assert {(t.host, t.task, t.status, t.unverified) for t in run.tasks} == {
        (host, task, "changed", False)
        for host in ("web1", "web2")
        for task in ("write the file", "run a command")
    }
    assert sorted(r.host for r in run.recap) == ["web1", "web2"]


def test_a_failing_task_fails_the_run_with_its_message(tmp_path: Path) -> None:
    req = request(
        tmp_path,
        """\
        - hosts: all
          gather_facts: false
          tasks:
            - name: break
              ansible.builtin.command: sh -c 'echo no such thing >&2; exit 3'
        """,
    )
    run = AnsibleRunner().run(req.model_copy(update={"check": False}))
    assert run.status is RunStatus.FAILED and not run.ok
    (task,) = run.failed()
    assert task.task == "break" and "no such thing" in task.message and "(rc 3)" in task.message
    assert run.recap[0].failed == 1


def test_no_log_values_stay_out_of_results_and_artifacts(tmp_path: Path) -> None:
    req = request(
        tmp_path,
        f"""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: write a secret
              ansible.builtin.copy:
                {{dest: "{tmp_path}/secret.txt", content: "{{{{ db_password }}}}"}}
              no_log: true
            - name: show a secret
              ansible.builtin.debug: {{msg: "{{{{ db_password }}}}"}}
              no_log: true
            - name: a command failing with a secret
              ansible.builtin.command: "sh -c 'echo {{{{ db_password }}}} >&2; exit 1'"
              no_log: true
              ignore_errors: true
            - name: a loop over a secret
              ansible.builtin.debug: {{msg: "{{{{ item }}}}"}}
              loop: ["{{{{ db_password }}}}"]
              no_log: true
            - name: fail with a secret
              ansible.builtin.fail: {{msg: "{{{{ db_password }}}}"}}
              no_log: true
        """,
    )
    for check in (True, False):
        run = AnsibleRunner().run(req.model_copy(update={"check": check}))
        assert run.status is RunStatus.FAILED
        assert by_task(run)["write a secret"].status == "changed"
        assert SECRET not in run.model_dump_json()
        assert files_containing(req.artifact_dir, SECRET) == []
    assert (tmp_path / "secret.txt").read_text() == SECRET  # the secret did reach the host


def test_the_bots_secrets_never_reach_the_run_or_its_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "GITHUB_TOKEN": "tok-a81f-github",
        "ANTHROPIC_API_KEY": "key-77c2-anthropic",
        "INFRABOT_WEBHOOK_SECRET": "hook-5d1e",
        "DB_PASSWORD": "pw-9b3a",
        "SOME_KEY": "k-4e2f",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    # Prove the scrub itself: without the artifact redaction pass that would mask leaks.
    monkeypatch.setattr("bot.execute.ansible.redact_tree", lambda root: None)
    req = request(
        tmp_path,
        """\
        - hosts: all
          gather_facts: true
          tasks:
            - name: print the environment's values
              ansible.builtin.shell: env | cut -d= -f2-
        """,
        check=False,
    )
    run = AnsibleRunner().run(req)
    assert run.status is RunStatus.SUCCESSFUL, run.error
    assert files_containing(req.artifact_dir, *secrets.values(), *secrets) == []
    assert "C.UTF-8" in Path(str(run.log_path)).read_text()  # the env was printed


def _children_of_this_process() -> list[int]:
    """Live (not zombie) run guards started by this process: one while a run is going on
    (other children, a fixture's server, are not the run's)."""
    found = []
    for pid in _children_of(os.getpid()):
        with contextlib.suppress(OSError):
            if guard.GUARD.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def _children_of(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(ppid) == parent and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


SLEEPY = """\
    - hosts: all
      gather_facts: false
      tasks:
        - name: first
          ansible.builtin.debug: {msg: hi}
        - name: sleep
          ansible.builtin.command: sleep 30
    """


def test_a_killed_run_leaves_its_hosts_unknown_and_its_task_ended(tmp_path: Path) -> None:
    """ansible-playbook killed from outside (the OOM killer, a person): the run's task,
    under a worker in a session of its own, ends with it."""
    task = f"sleep {6 * TIMEOUT + os.getpid() % 10_000}"  # ours alone

    def kill_ansible(line: str) -> None:
        if line == "web1: sleep":
            _wait_until_running(task)
            for parent in _children_of_this_process():
                for pid in _children_of(parent):  # ansible-playbook, under the run guard
                    os.kill(pid, signal.SIGKILL)

    try:
        req = request(tmp_path, SLEEPY.replace("sleep 30", task), check=False)
        run = AnsibleRunner().run(req, kill_ansible)
        assert run.status is RunStatus.UNKNOWN and not run.ok
        assert run.error == (
            "the run ended without a recap (ansible-playbook was killed): the state of hosts "
            "web1 is unknown; the next run will reconcile"
        )
        assert run.duration_s < 20
        assert by_task(run)["first"].status == "ok"
        assert _wait_until_gone(task) == [], "the killed run's task is still running"
    finally:
        _end_what_is_left(tmp_path)


class JumpingClock:
    """The run's timeout clock, put ahead past the timeout once the endless task started.
    The timeout then fires while that task runs, and never before: with a wall-clock
    timeout of a few seconds a loaded machine could still be starting ansible-playbook when
    it fired (a failed run, no task started) or, with a short task, finish first."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


def _processes_running(argv: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().replace(b"\0", b" ").strip() == argv.encode():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def _end_what_is_left(run_dir: Path) -> None:
    """ansible-playbook's workers are session leaders (they call setsid), out of reach of
    the SIGKILL that ends a timed-out run's process group: end the worker sessions of this
    run (their command line names its inventory), and with them the task they run."""
    needle = str(run_dir).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            group = os.getpgid(int(cmdline.parent.name))
            if needle in cmdline.read_bytes() and group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)


def _timed_out_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str, before_jump: Callable[[], None]
) -> DryRun:
    """A run whose 300 s timeout fires while ``task`` runs, by ansible-runner's clock."""
    clock = JumpingClock()
    monkeypatch.setattr(bot.execute.ansible, "_clock", clock)

    def jump_when_it_sleeps(line: str) -> None:
        if line == "web1: sleep":
            before_jump()
            clock.ahead = 2 * TIMEOUT

    req = request(tmp_path, SLEEPY.replace("sleep 30", task), check=False, timeout_s=TIMEOUT)
    return AnsibleRunner().run(req, jump_when_it_sleeps)


TIMEOUT = 300  # by the real clock it fires only if the jump never came


def test_a_timed_out_run_leaves_its_hosts_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        run = _timed_out_run(tmp_path, monkeypatch, f"sleep {2 * TIMEOUT}", lambda: None)
        assert run.status is RunStatus.UNKNOWN
        assert run.error is not None and f"timed out after {TIMEOUT}s" in run.error, run.error
        assert "the state of hosts web1 is unknown" in run.error
        assert by_task(run)["first"].status == "ok"
        assert _children_of_this_process() == []
    finally:
        _end_what_is_left(tmp_path)


def test_a_timed_out_run_ends_the_task_it_was_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = f"sleep {2 * TIMEOUT + os.getpid() % 10_000}"  # ours alone

    try:
        run = _timed_out_run(tmp_path, monkeypatch, task, lambda: _wait_until_running(task))
        assert run.status is RunStatus.UNKNOWN
        assert _wait_until_gone(task) == [], "the timed-out task is still running"
    finally:
        _end_what_is_left(tmp_path)


def _wait_until_running(task: str) -> None:
    deadline = time.monotonic() + 60
    while not _processes_running(task) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_running(task), f"{task} never started"


def _wait_until_gone(task: str) -> list[int]:
    deadline = time.monotonic() + 10
    while _processes_running(task) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _processes_running(task)


def test_an_interrupted_run_takes_ansible_down_with_it(tmp_path: Path) -> None:
    task = f"sleep {3 * TIMEOUT + os.getpid() % 10_000}"  # ours alone

    def buggy_progress(line: str) -> None:
        if line == "web1: sleep":
            _wait_until_running(task)
            raise RuntimeError("a bug in the progress callback")

    # Holding on to the exception keeps pexpect's child object alive: nothing reaps it but us.
    try:
        with pytest.raises(RuntimeError, match="a bug in the progress callback") as caught:
            req = request(tmp_path, SLEEPY.replace("sleep 30", task), check=False)
            AnsibleRunner().run(req, buggy_progress)
        deadline = time.monotonic() + 5
        while _children_of_this_process() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _children_of_this_process() == [], caught.value
        assert _wait_until_gone(task) == [], "the interrupted run's task is still running"
    finally:
        _end_what_is_left(tmp_path)


# A bot process running one apply: the serve worker child, or `infrabot pr apply`.
ANOTHER_BOT = """\
import sys
from pathlib import Path
from bot.execute import AnsibleRunner, RunRequest
AnsibleRunner().run(RunRequest.model_validate_json(Path(sys.argv[1]).read_text()))
"""


def test_ending_a_run_spares_another_runs_task_and_a_killed_bot_ends_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs at once: the first one's timeout ends its own task only; SIGKILL to the
    other bot process (no exception path runs there) still ends the other run's task."""
    theirs = f"sleep {4 * TIMEOUT + os.getpid() % 10_000}"
    ours = f"sleep {5 * TIMEOUT + os.getpid() % 10_000}"
    other = request(tmp_path / "other", SLEEPY.replace("sleep 30", theirs), check=False)
    spec = write(tmp_path / "other.json", other.model_dump_json())
    bot = subprocess.Popen([sys.executable, "-c", ANOTHER_BOT, str(spec)])
    try:
        _wait_until_running(theirs)
        run = _timed_out_run(tmp_path, monkeypatch, ours, lambda: _wait_until_running(ours))
        assert run.status is RunStatus.UNKNOWN
        assert _wait_until_gone(ours) == [], "the timed-out task is still running"
        assert _processes_running(theirs), "the other run's task was ended too"
        assert bot.poll() is None
        bot.kill()
        bot.wait()
        assert _wait_until_gone(theirs) == [], "a killed bot's run goes on"
    finally:
        bot.kill()
        bot.wait()
        _end_what_is_left(tmp_path)


def test_a_broken_playbook_fails_before_any_task(tmp_path: Path) -> None:
    run = AnsibleRunner().run(request(tmp_path, "- hosts: all\n  tasks: [{bogus_key: 1}]\n"))
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "before any task started" in run.error
    assert "bogus_key" in run.error  # the log tail says what is wrong


def test_a_missing_playbook_is_a_failed_run(tmp_path: Path) -> None:
    req = request(tmp_path, "- hosts: all\n", playbook="render-proxy.yml")
    run = AnsibleRunner().run(req)
    assert run.status is RunStatus.FAILED
    assert run.error == f"no playbook at {tmp_path}/ansible/render-proxy.yml"


@pytest.mark.parametrize("runner", [AnsibleRunner(), FakeRunner()])
def test_no_host_means_nothing_runs(tmp_path: Path, runner: AnsibleRunner | FakeRunner) -> None:
    req = RunRequest(
        playbook_dir=tmp_path / "nowhere",
        inventory=tmp_path / "nothing.yml",
        limit=(),
        check=True,
        artifact_dir=tmp_path / "artifacts",
        ident="pr-2-dryrun-0000000",
    )
    run = runner.run(req)
    assert run.status is RunStatus.SKIPPED and run.ok and run.tasks == ()
    assert not (tmp_path / "artifacts").exists()


def test_without_ansible_playbook_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    req = request(tmp_path, "- hosts: all\n")
    with pytest.raises(InfrabotError) as err:
        AnsibleRunner(bin_dir=empty).run(req)
    assert str(err.value) == "ansible-playbook not found: install ansible-core (pip install -e .)"
