"""``dnsmasq --test`` on the DNS files a dry-run rendered, in a scratch folder of its own.

The dns role writes two files: ``dnsmasq.d/cnames.conf`` (``cname=`` lines, options dnsmasq
parses at start) and ``hosts`` (A records, an addn-hosts file).  ``dnsmasq --test`` parses
options only: it refuses a CNAME loop, a duplicate or a malformed ``cname=``, but it never
opens an addn-hosts file, and dnsmasq itself only logs and skips a bad line there.  So the
hosts file is checked here, line by line, against the grammar the role writes
(``<IPv4> <host name>``): a line dnsmasq would drop is a record that silently never serves.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bot.errors import InfrabotError
from bot.execute.redact import redact
from bot.model.resources import is_hostname

_TIMEOUT_S = 30
CNAMES = "cnames.conf"
HOSTS = "hosts"


def _binary(dnsmasq_bin: str) -> str:
    found = shutil.which(dnsmasq_bin) or shutil.which(dnsmasq_bin, path="/usr/sbin:/sbin")
    if found is None:
        raise InfrabotError(f"{dnsmasq_bin} not found: install dnsmasq (apt-get install dnsmasq)")
    return found


def hosts_problems(text: str) -> list[str]:
    """Lines of an addn-hosts file that are not ``<IPv4> <host name>...`` (1-based)."""
    problems = []
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            ipaddress.IPv4Address(fields[0])
        except ValueError:
            problems.append(f"hosts line {number}: not an IPv4 address first")
            continue
        if len(fields) < 2 or not all(is_hostname(name) for name in fields[1:]):
            problems.append(f"hosts line {number}: not a host name after the address")
    return problems


def _conf(scratch: Path) -> str:
    return (
        "# Scratch config for dnsmasq --test (bot/execute/dnsmasq.py)\n"
        "port=0\nno-resolv\nno-hosts\n"
        f"addn-hosts={scratch / HOSTS}\n"
        f"conf-dir={scratch / 'dnsmasq.d'},*.conf\n"
    )


def _run_test(binary: str, conf: Path) -> tuple[bool, str]:
    cmd = [binary, "--test", f"--conf-file={conf}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"dnsmasq --test did not finish within {_TIMEOUT_S}s"
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def dnsmasq_test(rendered: Mapping[str, str], dnsmasq_bin: str = "dnsmasq") -> tuple[bool, str]:
    """Test one DNS host's rendered files (``{"cnames.conf": ..., "hosts": ...}``): (ok, output)."""
    binary = _binary(dnsmasq_bin)
    with tempfile.TemporaryDirectory(prefix="infrabot-dnsmasq-") as tmp:
        scratch = Path(tmp)
        (scratch / "dnsmasq.d").mkdir()
        (scratch / "dnsmasq.d" / CNAMES).write_text(rendered.get(CNAMES, ""))
        (scratch / HOSTS).write_text(rendered.get(HOSTS, ""))
        conf = scratch / "dnsmasq.conf"
        conf.write_text(_conf(scratch))
        ok, output = _run_test(binary, conf)
        output = output.replace(str(scratch) + "/", "")
    problems = hosts_problems(rendered.get(HOSTS, ""))
    lines = [output, *problems] if output else problems
    return ok and not problems, redact("\n".join(lines))
