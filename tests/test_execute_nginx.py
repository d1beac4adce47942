"""nginx_test(): real nginx -t on rendered vhosts in a scratch prefix, as root and not."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import InfrabotError
from bot.execute import nginx_test

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("nginx", path="/usr/sbin:/usr/bin") is None, reason="nginx is not installed"
    ),
]

GOOD = """\
server {
    listen 127.0.0.1:18081;
    server_name app.example.test;
    location / { proxy_pass http://127.0.0.1:9001; }
}
"""
BROKEN = """\
server {
    listen 127.0.0.1:18082;
    server_name broken.example.test;
    proxy_pas http://127.0.0.1:9002;
}
"""


@pytest.fixture
def sites() -> Iterator[Path]:
    """A sites dir that an unprivileged user can read too (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="infrabot-sites-"))
    root.chmod(0o755)
    (root / "sites").mkdir(mode=0o755)
    yield root / "sites"
    shutil.rmtree(root)


def test_a_valid_vhost_passes(sites: Path) -> None:
    (sites / "app.conf").write_text(GOOD)
    ok, output = nginx_test(sites)
    assert ok, output
    assert "test is successful" in output


def test_a_broken_vhost_fails_with_the_nginx_error_line(sites: Path) -> None:
    (sites / "app.conf").write_text(GOOD)
    (sites / "broken.conf").write_text(BROKEN)
    ok, output = nginx_test(sites)
    assert not ok
    assert f'unknown directive "proxy_pas" in {sites.resolve()}/broken.conf:4' in output


def test_no_site_file_is_nothing_to_test(sites: Path) -> None:
    ok, output = nginx_test(sites)
    assert ok and "no site file" in output
    assert nginx_test(sites / "missing")[0]


def test_a_missing_nginx_says_what_to_install(sites: Path) -> None:
    with pytest.raises(InfrabotError, match="nginx-nope not found: install nginx"):
        nginx_test(sites, nginx_bin="nginx-nope")


NOBODY_NGINX = """\
#!/bin/sh
# nginx as an unprivileged user that owns the scratch prefix, as a non-root bot would.
# nginx_test calls: nginx -t -p PREFIX -c CONF -e LOG
chown -R 65534:65534 "$3"
exec setpriv --reuid=65534 --regid=65534 --clear-groups {nginx} "$@"
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody"
)
@pytest.mark.parametrize(("vhost", "expected"), [(GOOD, True), (BROKEN, False)])
def test_it_works_unprivileged(sites: Path, tmp_path: Path, vhost: str, expected: bool) -> None:
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    wrapper = tmp_path / "nginx-as-nobody"
    wrapper.write_text(NOBODY_NGINX.format(nginx=nginx))
    wrapper.chmod(0o755)
    (sites / "site.conf").write_text(vhost)
    (sites / "site.conf").chmod(0o644)
    ok, output = nginx_test(sites, nginx_bin=str(wrapper))
    assert ok is expected, output
    assert "Permission denied" not in output and "[alert]" not in output
