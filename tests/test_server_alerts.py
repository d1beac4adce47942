"""``POST /alerts`` on the real ``infrabot serve``: Alertmanager's credentials are checked
(failing closed), a valid payload opens one ticket on the local forge, a redelivery opens
none, and bad input is a clear 400."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_alerts import alert, payload
from serverkit import SECRET, Server, start

from bot.demo import make_copy
from bot.forge.local import LocalForge
from bot.server.alerts import authorised

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "alertmanager-token"


@pytest.mark.parametrize(
    ("environ", "header", "ok"),
    [
        ({}, f"Bearer {TOKEN}", False),  # nothing configured: closed
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, None, False),
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, "Bearer wrong", False),
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, f"Bearer {TOKEN}", True),
        ({"INFRABOT_ALERTS_BASIC": "am:pw"}, "Basic " + base64.b64encode(b"am:pw").decode(), True),
        ({"INFRABOT_ALERTS_BASIC": "am:pw"}, "Basic " + base64.b64encode(b"am:px").decode(), False),
    ],
)
def test_alert_credentials(environ: dict[str, str], header: str | None, ok: bool) -> None:
    assert authorised(environ, header) is ok


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    repo = tmp_path_factory.mktemp("alerts") / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", "0"]
    srv = start(argv, repo, {"INFRABOT_WEBHOOK_SECRET": SECRET, "INFRABOT_ALERTS_TOKEN": TOKEN})
    yield srv, repo
    srv.stop()


def post(srv: Server, body: bytes, auth: str | None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    return srv.request("POST", "/alerts", body, headers)


def test_alerts_need_the_token(server: tuple[Server, Path]) -> None:
    srv, repo = server
    body = json.dumps(payload('{}:{alertname="X"}', alert("X"))).encode()
    assert post(srv, body, None)[0] == 401
    assert post(srv, body, "Bearer nope")[0] == 401
    assert not (repo / ".infrabot/forge.db").exists() or not _issues(repo)


def test_an_alert_group_opens_one_ticket_and_a_redelivery_none(
    server: tuple[Server, Path],
) -> None:
    srv, repo = server
    group = '{}:{alertname="SiteDown"}'
    body = json.dumps(payload(group, alert("SiteDown"))).encode()
    status, answer = post(srv, body, f"Bearer {TOKEN}")
    assert status == 200, answer
    assert isinstance(answer, dict) and answer["ticket"] is not None
    before = _issues(repo)
    assert post(srv, body, f"Bearer {TOKEN}")[0] == 200
    assert _issues(repo) == before


def test_a_payload_that_is_not_alertmanagers_is_a_400(server: tuple[Server, Path]) -> None:
    srv, _ = server
    for body in (b"not json", b'{"version": "4"}', b"\xff\xfe"):
        status, answer = post(srv, body, f"Bearer {TOKEN}")
        assert status == 400, (body, answer)


def _issues(repo: Path) -> list[str]:
    forge = LocalForge(repo / ".infrabot/forge.db", {}, repo)
    return [i.title for i in forge.list_issues()]
