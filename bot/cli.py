"""The ``infrabot`` command: a thin shell over the pipeline.

Errors are one line on stderr and a non-zero exit (1: refused or failed, 2: bad usage);
an unexpected bug writes its traceback to ``.infrabot/crash.log`` instead of the screen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot import __version__
from bot.errors import InfrabotError, InputError
from bot.server.settings import GITHUB_MAX_PAYLOAD

Handler = Callable[[argparse.Namespace], int]


def progress_printer(quiet: bool) -> Callable[[str], None]:
    def show(message: str) -> None:
        if not quiet:
            print(f"  → {message}", file=sys.stderr, flush=True)

    return show


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with --json, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(data), indent=2, default=str))
    else:
        print(text)


def _jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {k: _jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(v) for v in data]
    return data


def read_body(path: str) -> str:
    """A body file's text (``-``: standard input), decoded strictly as UTF-8."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the body file {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = "standard input" if path == "-" else path
        raise InputError(
            f"{where} is not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None


def check_arguments(argv: Sequence[str]) -> None:
    """Refuse command-line text that is not valid UTF-8 (Python keeps such bytes as lone
    surrogates, which would fail much later, half way through a step)."""
    for number, arg in enumerate(argv, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"argument {number} is not valid UTF-8 text: {arg.encode('utf-8', 'replace')!r}"
            ) from None


def _body_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--body-file",
        metavar="PATH",
        default=None,
        help="read the text from a UTF-8 file (- for standard input)",
    )


def _common(p: argparse.ArgumentParser, *, json_flag: bool = False, user: bool = False) -> None:
    if json_flag:
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    if user:
        p.add_argument(
            "--as", dest="user", metavar="USER", help="act as this user (default: $INFRABOT_USER)"
        )


def build_parser() -> argparse.ArgumentParser:
    from bot import cli_handlers as h

    parser = argparse.ArgumentParser(
        prog="infrabot",
        description="A GitOps bot for infrastructure: issues become plans, PRs with "
        "validation and an Ansible dry-run, and reviewed merges that apply with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"infrabot {__version__}")
    parser.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="the infrastructure repository (default: the current git repo)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    issue = top.add_parser("issue", help="open, show, list and comment on issues")
    isub = issue.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = isub.add_parser("open", help="open an issue; the bot plans it and opens a PR")
    p.add_argument("title")
    p.add_argument("--body", default=None)
    _body_file(p)
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.issue_open)
    p = isub.add_parser("show", help="an issue, its comments and its trajectory")
    p.add_argument("number", type=int)
    _common(p, json_flag=True)
    p.set_defaults(handler=h.issue_show)
    p = isub.add_parser("list", help="issues")
    p.add_argument("--state", choices=["open", "closed"], default=None)
    _common(p, json_flag=True)
    p.set_defaults(handler=h.issue_list)
    p = isub.add_parser("comment", help="comment on an issue (a reply resumes the bot's work)")
    p.add_argument("number", type=int)
    p.add_argument("text", nargs="?", default=None)
    _body_file(p)
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.comment)

    pr = top.add_parser("pr", help="pull requests: list, show, comment, review, merge, revert")
    psub = pr.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = psub.add_parser("list", help="pull requests")
    p.add_argument("--state", choices=["open", "closed", "merged"], default=None)
    _common(p, json_flag=True)
    p.set_defaults(handler=h.pr_list)
    p = psub.add_parser("show", help="a pull request: body, reviews, statuses, comments")
    p.add_argument("number", type=int)
    _common(p, json_flag=True)
    p.set_defaults(handler=h.pr_show)
    p = psub.add_parser("open", help="open a PR from a branch you pushed (it gets validated)")
    p.add_argument("branch")
    p.add_argument("--title", default=None)
    p.add_argument("--issue", type=int, default=None, help="the issue it resolves")
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.pr_open)
    p = psub.add_parser("comment", help="comment on a PR (/plan, /apply, /unlock, /help)")
    p.add_argument("number", type=int)
    p.add_argument("text", nargs="?", default=None)
    _body_file(p)
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.comment)
    p = psub.add_parser("review", help="review a PR")
    p.add_argument("number", type=int)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--approve", action="store_const", const="approved", dest="state")
    kind.add_argument(
        "--request-changes", action="store_const", const="changes_requested", dest="state"
    )
    kind.add_argument(
        "--dismiss",
        metavar="REVIEWER",
        default=None,
        help="dismiss REVIEWER's review (needs write), e.g. a stale 'changes requested'",
    )
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.pr_review)
    p = psub.add_parser("merge", help="merge a PR: applies it and posts the evidence")
    p.add_argument("number", type=int)
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.pr_merge)
    p = psub.add_parser("revert", help="open a PR that reverts a merged PR")
    p.add_argument("number", type=int)
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.pr_revert)

    p = top.add_parser("validate", help="validate the desired state in the working tree")
    _common(p, json_flag=True)
    p.set_defaults(handler=h.validate)
    p = top.add_parser("plan", help="dry-run the working tree's desired state (check + diff)")
    p.add_argument("--all", action="store_true", help="every host, not only the affected ones")
    _common(p, json_flag=True)
    p.set_defaults(handler=h.plan)

    p = top.add_parser(
        "handle-event",
        help="handle one GitHub Actions event (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH)",
    )
    p.add_argument("--event-name", default=None, help="default: $GITHUB_EVENT_NAME")
    p.add_argument("--event-path", default=None, help="default: $GITHUB_EVENT_PATH")
    _common(p, json_flag=True)
    p.set_defaults(handler=h.handle_event)

    p = top.add_parser(
        "reconcile",
        help="bring the estate to the base branch: apply it to the hosts that differ",
    )
    p.add_argument("--dry-run", action="store_true", help="only say which hosts differ, and how")
    _common(p, json_flag=True, user=True)
    p.set_defaults(handler=h.reconcile_cmd)

    estate = top.add_parser("estate", help="the local estate's services (nginx, dnsmasq, ...)")
    esub = estate.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, fn, text in (
        ("up", h.estate_up, "start the local estate's services and bring them to main"),
        ("down", h.estate_down, "stop them and remove what they made"),
        ("status", h.estate_status, "what is running"),
    ):
        p = esub.add_parser(name, help=text)
        _common(p, json_flag=True)
        p.set_defaults(handler=fn)

    p = top.add_parser("serve", help="receive GitHub webhooks: verify, queue durably, process")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument(
        "--queue",
        type=Path,
        default=None,
        help="the delivery queue's SQLite file (default .infrabot/server/deliveries.db)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=20.0,
        help="seconds a stop waits for the delivery in progress (default 20)",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=GITHUB_MAX_PAYLOAD,
        help="largest body accepted, in bytes (default: GitHub's 25 MB cap)",
    )
    p.set_defaults(handler=h.serve)

    p = top.add_parser("eval", help="score an engine on the request corpus (tests/evals/)")
    p.add_argument("--engine", choices=("offline", "claude"), default="offline")
    p.add_argument("--corpus", type=Path, default=None, help="folder of case files")
    p.add_argument("--min-pass-rate", type=float, default=0.0, help="exit 1 below this rate (0..1)")
    p.add_argument(
        "--depth",
        choices=("pr", "draft"),
        default="pr",
        help="pr: each case up to a validated, dry-run PR (default); draft: validate the "
        "engine's draft only, no PR and no dry-run (seconds)",
    )
    p.add_argument(
        "--lanes",
        type=int,
        default=None,
        help="scratch copies running cases side by side at depth pr (default: one per core, "
        "at most 4)",
    )
    p.add_argument(
        "--no-estate",
        action="store_true",
        help="do not start a local estate per lane: each dry-run is then contrasted with one "
        "of main (slower; no root needed)",
    )
    _common(p, json_flag=True)
    p.set_defaults(handler=h.evaluate)

    p = top.add_parser("demo", help="run the seed example end to end in a throwaway copy")
    p.add_argument(
        "--keep", action="store_true", help="leave the copy and its estate running at the end"
    )
    p.add_argument("--dir", type=Path, default=None, help="where to make the copy")
    p.add_argument(
        "--alert",
        action="store_true",
        help="the alert loop instead: alert -> ticket -> PR -> apply -> ticket closed",
    )
    p.set_defaults(handler=h.demo)

    from bot.alerts.cli import add_alert_commands  # slo, runbook, alert, check (issue 8)

    add_alert_commands(top)
    from bot.doctor.cli import add_doctor_command  # doctor (issue 6)

    add_doctor_command(top)
    return parser


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail on the closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_arguments(argv)
    except InputError as exc:
        print(f"infrabot: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except InputError as exc:
        print(f"infrabot: {exc}", file=sys.stderr)
        return 2
    except InfrabotError as exc:
        print(f"infrabot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("infrabot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`infrabot validate | head`): nothing to report
        _stdout_to_devnull()
        return 141
    except Exception as exc:  # a bug: keep the traceback off the screen, but keep it
        log = _crash_log(args)
        print(
            f"infrabot: internal error: {type(exc).__name__}: {exc} (details in {log})",
            file=sys.stderr,
        )
        return 70


def _crash_log(args: argparse.Namespace) -> Path:
    base = (args.repo or Path.cwd()) / ".infrabot"
    if not base.parent.exists():
        base = Path(os.environ.get("TMPDIR", "/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    path = base / "crash.log"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(traceback.format_exc() + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
