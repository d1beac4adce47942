"""Generated desired-state estates of a given size, for the scale benchmark.

Every kind appears, and every cross-reference is valid: each application is a Container on a
node, a Site on a proxy, the DnsRecord of the Site's domain on a DNS server and a
MonitoringTarget on a monitor; hosts of each role are shared by about 50 applications. All
hosts are ``connection: local`` on loopback ports, so the dry-run of any of them runs here.
One resource per file, as the seed estate does, which is the worst case for per-file costs.

An estate is written once into a git repository (a copy of this project committed as
``main``) and reused: ``ensure_estate`` skips the work when the repository already holds an
estate of that size from this generator version.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

GENERATOR_VERSION = "4"
APPS_PER_HOST = 50
ROLES = ("node", "proxy", "dns", "monitoring")
_GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@infrabot.local"]


def plan_sizes(documents: int, seed_documents: int) -> tuple[int, int]:
    """(applications, hosts per role) whose documents, with the seed's, come to ``documents``
    or just under it (the rest is padded with DNS records)."""
    apps = 0
    while True:
        nxt = apps + 1
        hosts = max(1, -(-nxt // APPS_PER_HOST))
        if seed_documents + 4 * nxt + len(ROLES) * hosts > documents:
            return apps, max(1, -(-apps // APPS_PER_HOST))
        apps = nxt


def host_doc(role: str, i: int) -> str:
    ports = {"proxy": f"ports:\n  http: {21000 + i}\n", "dns": f"ports:\n  dns: {26000 + i}\n"}
    return (
        f"kind: Host\nname: {role[:3]}{i:04d}\nowner: bench\nenvironment: lab\n"
        f"address: 127.0.0.1\nconnection: local\nroles: [{role}]\n"
        + ("provider: local\n" if role == "node" else "")
        + ports.get(role, "")
    )


def app_docs(i: int, hosts: int) -> dict[str, str]:
    """The four documents of application ``i``, by their path under ``infra/state``."""
    h = i % hosts
    ip = f"10.{80 + i // 61440}.{(i // 240) % 256}.{10 + i % 240}"
    name, domain = f"app{i:05d}", f"app{i:05d}.bench.example.com"
    return {
        f"containers/gen/{name}.yaml": (
            f"kind: Container\nname: {name}\nowner: bench\nenvironment: lab\n"
            f"node: nod{h:04d}\nvmid: {1000 + i}\nhostname: {name}\ncores: 1\n"
            f"memory: 512  # MiB\ndisk: 4  # GiB\nip: {ip}/16\nservice_port: 8080\n"
        ),
        f"sites/gen/{name}.yaml": (
            f"kind: Site\nname: {name}\nowner: bench\nenvironment: lab\ndomain: {domain}\n"
            f'upstream: "http://{ip}:8080"\nproxy: pro{h:04d}\n'
        ),
        f"dns/gen/{domain}.yaml": (
            f"kind: DnsRecord\nname: {domain}\nowner: bench\nenvironment: lab\ntype: A\n"
            f"value: 127.0.0.1\nserver: dns{h:04d}\n"
        ),
        f"monitoring/gen/{name}.yaml": (
            f"kind: MonitoringTarget\nname: {name}\nowner: bench\nenvironment: lab\n"
            f'monitor: mon{h:04d}\ntargets: ["{ip}:8080"]\nprobe: http://{domain}/\n'
            "labels:\n  team: bench\n"
        ),
    }


def padding_doc(i: int) -> tuple[str, str]:
    name = f"extra{i:03d}.bench.example.com"
    text = (
        f"kind: DnsRecord\nname: {name}\nowner: bench\nenvironment: lab\ntype: CNAME\n"
        f"value: app00000.bench.example.com\nserver: dns0000\n"
    )
    return f"dns/gen/{name}.yaml", text


def estate_files(documents: int, seed_documents: int) -> Iterator[tuple[str, str]]:
    apps, hosts = plan_sizes(documents, seed_documents)
    for role in ROLES:
        for h in range(hosts):
            yield f"hosts/gen/{role[:3]}{h:04d}.yaml", host_doc(role, h)
    for i in range(apps):
        yield from app_docs(i, hosts).items()
    written = seed_documents + 4 * apps + len(ROLES) * hosts
    for i in range(documents - written):
        yield padding_doc(i)


def count_documents(state: Path) -> int:
    return sum(
        sum(1 for part in p.read_text().split("\n---") if "kind:" in part)
        for p in state.rglob("*.yaml")
    )


def raise_limits(policy: Path, documents: int) -> None:
    """Raise the policy's caps on files and documents only where an estate of this size
    would exceed them: the project's defaults fit 20,000 documents, so the benchmark runs
    under the policy as shipped."""
    text = policy.read_text()
    for key in ("max_files", "max_documents"):
        match = re.search(rf"^(\s*{key}:\s*)(\d+)", text, flags=re.M)
        if match and int(match.group(2)) < documents:
            text = text.replace(match.group(0), f"{match.group(1)}{documents}", 1)
    policy.write_text(text)


def ensure_estate(repo: Path, documents: int, seed: Path) -> Path:
    """A git repository at ``repo`` holding the seed project plus a generated estate of
    ``documents`` documents in ``infra/state``, committed on ``main``; reused when present."""
    stamp = repo / ".bench-estate"
    wanted = f"{GENERATOR_VERSION} {documents}"
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return repo
    from bot.demo import make_copy  # the benchmark puts the project on sys.path

    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    make_copy(seed, repo)
    raise_limits(repo / "schemas" / "policy.yaml", documents)
    state = repo / "infra" / "state"
    for rel, text in estate_files(documents, count_documents(state)):
        path = state / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (repo / ".gitignore").write_text(".infrabot/\n.bench-estate\n")
    subprocess.run([*_GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        [*_GIT, "-C", str(repo), "commit", "-q", "-m", f"Generated estate: {documents} documents"],
        check=True,
    )
    stamp.write_text(wanted + "\n")
    return repo
