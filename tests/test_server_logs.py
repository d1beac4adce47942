"""Links to a run's full log: the Actions run, the server's signed ``/logs`` URL (served
over real HTTP by ``infrabot serve``), the local path on the local forge, or nothing."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serverkit import SECRET, infrabot_serve

from bot.server.logs import log_link, log_token, read_log

ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/infra",
    "GITHUB_RUN_ID": "4242",
}


def test_on_actions_the_log_is_the_workflow_run(tmp_path: Path) -> None:
    link = log_link(ACTIONS, "github", tmp_path, tmp_path / ".infrabot" / "artifacts")
    assert link("/runner/work/.infrabot/artifacts/pr-2/x/stdout") == (
        "https://github.com/acme/infra/actions/runs/4242"
    )
    assert link(None) is None


def test_without_a_place_to_read_it_there_is_no_link(tmp_path: Path) -> None:
    artifacts = tmp_path / ".infrabot" / "artifacts"
    assert log_link({}, "github", tmp_path, artifacts)(str(artifacts / "a")) is None
    half = {**ACTIONS, "GITHUB_RUN_ID": ""}
    assert log_link(half, "github", tmp_path, artifacts)(str(artifacts / "a")) is None
    # a public URL without the secret that signs the links: no link either
    public = {"INFRABOT_PUBLIC_URL": "https://bot.example.com"}
    assert log_link(public, "github", tmp_path, artifacts)(str(artifacts / "a")) is None


def test_on_the_local_forge_the_log_is_its_path_in_the_repository(tmp_path: Path) -> None:
    artifacts = tmp_path / ".infrabot" / "artifacts"
    link = log_link({}, "local", tmp_path, artifacts)
    assert link(str(artifacts / "pr-2" / "stdout")) == ".infrabot/artifacts/pr-2/stdout"


def test_a_token_opens_only_its_own_log(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    (artifacts / "pr-2").mkdir(parents=True)
    (artifacts / "pr-2" / "stdout").write_text("the log\n")
    (tmp_path / "secret.txt").write_text("not a log\n")
    token = log_token(SECRET, "pr-2/stdout")
    assert read_log(artifacts, SECRET, token, "pr-2/stdout") == b"the log\n"
    assert read_log(artifacts, SECRET, token, "pr-2/other") is None
    assert read_log(artifacts, "another secret", token, "pr-2/stdout") is None
    assert read_log(artifacts, None, token, "pr-2/stdout") is None
    escape = log_token(SECRET, "../secret.txt")  # even a signed path stays inside
    assert read_log(artifacts, SECRET, escape, "../secret.txt") is None


@pytest.mark.integration
def test_the_server_serves_the_log_a_comment_links(tmp_path: Path) -> None:
    server = infrabot_serve(tmp_path, "--queue", str(tmp_path / "q.db"))
    try:
        log = tmp_path / ".infrabot" / "artifacts" / "pr-3" / "pr-3-dryrun-c2ff65a" / "stdout"
        log.parent.mkdir(parents=True)
        log.write_text("PLAY [proxy1] ***\nok: [proxy1]\n")
        environ = {"INFRABOT_PUBLIC_URL": f"http://{server.host}:{server.port}/"}
        environ["INFRABOT_WEBHOOK_SECRET"] = SECRET
        url = log_link(environ, "github", tmp_path, tmp_path / ".infrabot" / "artifacts")(str(log))
        assert url is not None and url.startswith(f"http://{server.host}:{server.port}/logs/")
        status, body = server.request("GET", urlsplit(url).path)
        assert (status, body) == (200, "PLAY [proxy1] ***\nok: [proxy1]\n")
        forged = urlsplit(url).path.replace("/logs/", "/logs/0")
        assert server.request("GET", forged)[0] == 404
        assert server.request("GET", "/logs/x/../../q.db")[0] == 404
    finally:
        assert server.stop_gracefully(), server.stderr()
