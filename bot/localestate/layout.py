"""Where a local host's runtime lives, and the service configs the estate owns (pure).

The layout is the contract with ``infra/ansible``: a host's ``infrabot_root`` is
``<estate root>/<host name>`` and the roles write inside it (``nginx/sites/*.conf``,
``dns/hosts``, ``dns/dnsmasq.d/*.conf``, ``prometheus/file_sd/*.json``,
``containers/*.json``).  This module writes none of those; it owns only the files that
start the services (``nginx/nginx.conf``, ``dns/dnsmasq.conf``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class HostLayout:
    """Paths of one host's runtime directory (``root`` = estate root / host name)."""

    root: Path

    @property
    def nginx_prefix(self) -> Path:
        return self.root / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_prefix / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        return self.nginx_prefix / "nginx.pid"

    @property
    def nginx_error_log(self) -> Path:
        return self.nginx_prefix / "logs" / "error.log"

    @property
    def nginx_dirs(self) -> tuple[Path, ...]:
        prefix = self.nginx_prefix
        temps = tuple(prefix / "temp" / name for name in NGINX_TEMP_PATHS)
        return (prefix / "sites", prefix / "logs", *temps)

    @property
    def dns_dir(self) -> Path:
        return self.root / "dns"

    @property
    def dnsmasq_conf(self) -> Path:
        return self.dns_dir / "dnsmasq.conf"

    @property
    def dnsmasq_pid(self) -> Path:
        return self.dns_dir / "dnsmasq.pid"

    @property
    def dns_hosts(self) -> Path:
        return self.dns_dir / "hosts"

    @property
    def dns_conf_dir(self) -> Path:
        return self.dns_dir / "dnsmasq.d"

    @property
    def file_sd(self) -> Path:
        return self.root / "prometheus" / "file_sd"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def container_script(self) -> Path:
        """The copy of roles/node/files/local_container.py that made the containers."""
        return self.containers / "bin" / "local_container.py"


def _q(value: Path | str) -> str:
    """An nginx string argument (paths may hold spaces)."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def nginx_conf(layout: HostLayout, host: str, port: int, user: str | None) -> str:
    """The main nginx.conf of a local proxy: everything under its prefix, sites included."""
    prefix = layout.nginx_prefix
    temps = "\n".join(
        f"    {name}_temp_path {_q(prefix / 'temp' / name)};" for name in NGINX_TEMP_PATHS
    )
    user_line = f"user {user};\n" if user else ""
    return f"""\
# Managed by infrabot (bot/localestate): nginx of the local host {host}.
# Sites come from sites/*.conf, written by infra/ansible/roles/proxy.
{user_line}worker_processes 1;
pid {_q(layout.nginx_pid)};
error_log {_q(layout.nginx_error_log)} warn;

events {{
    worker_connections 512;
}}

http {{
    types {{
        text/html html htm;
        text/plain txt;
        text/css css;
        application/javascript js;
        application/json json;
        image/png png;
        image/svg+xml svg;
    }}
    default_type application/octet-stream;
    access_log {_q(prefix / "logs" / "access.log")};
    server_names_hash_bucket_size 128;
{temps}

    # Requests for a domain no site serves.
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        return 404;
    }}

    include {_q(prefix / "sites" / "*.conf")};
}}
"""


def dnsmasq_conf(layout: HostLayout, host: str, port: int, user: str) -> str:
    """The dnsmasq.conf of a local DNS server: loopback only, only infrabot's records."""
    return f"""\
# Managed by infrabot (bot/localestate): dnsmasq of the local host {host}.
# A records: {layout.dns_hosts} (re-read on SIGHUP); CNAMEs: {layout.dns_conf_dir}/*.conf
# (read at start).  Both are written by infra/ansible/roles/dns.
port={port}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
addn-hosts={layout.dns_hosts}
conf-dir={layout.dns_conf_dir},*.conf
pid-file={layout.dnsmasq_pid}
user={user}
log-facility={layout.dns_dir / "dnsmasq.log"}
"""
