"""``nginx -t`` on rendered vhost files, in a scratch prefix of its own.

nginx runs unprivileged only when everything it opens sits under a prefix it owns: the pid
file, the error and access logs and every ``*_temp_path``.  The main config written here puts
them all under a temporary prefix and includes the rendered ``*.conf`` files; ``-e`` keeps
nginx from opening its compiled-in error log (``/var/log/nginx/error.log``) first.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.errors import InfrabotError
from bot.execute.redact import redact

_TIMEOUT_S = 30
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def main_config(prefix: Path, sites: Path) -> str:
    """A minimal nginx.conf that keeps every file nginx opens under ``prefix``."""
    temps = "\n".join(f'    {name}_temp_path "{prefix}/{name}_temp";' for name in _TEMP_PATHS)
    return f"""worker_processes 1;
pid "{prefix}/nginx.pid";
error_log "{prefix}/logs/error.log";
events {{
    worker_connections 64;
}}
http {{
    access_log "{prefix}/logs/access.log";
{temps}
    include "{sites}/*.conf";
}}
"""


def _binary(nginx_bin: str) -> str:
    found = shutil.which(nginx_bin) or shutil.which(nginx_bin, path="/usr/sbin:/sbin")
    if found is None:
        raise InfrabotError(f"{nginx_bin} not found: install nginx (apt-get install nginx)")
    return found


def _run_test(binary: str, prefix: Path, conf: Path) -> tuple[bool, str]:
    cmd = [binary, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs/error.log")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"nginx -t did not finish within {_TIMEOUT_S}s"
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def nginx_test(rendered_sites: Path, nginx_bin: str = "nginx") -> tuple[bool, str]:
    """Test the vhost files in ``rendered_sites`` (``<render dir>/sites``): (ok, output)."""
    binary = _binary(nginx_bin)
    sites = rendered_sites.resolve()
    if '"' in str(sites):
        return False, f"cannot test {sites}: a double quote in the path"
    if not sites.is_dir() or not any(sites.glob("*.conf")):
        return True, f"no site file to test in {rendered_sites}"
    with tempfile.TemporaryDirectory(prefix="infrabot-nginx-") as scratch:
        prefix = Path(scratch)
        (prefix / "logs").mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(main_config(prefix, sites))
        ok, output = _run_test(binary, prefix, conf)
    return ok, redact(output)
