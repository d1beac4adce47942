"""The validation cache cannot change a verdict: randomized estates give the same report and
the same estate with and without it, and damaged, stale or mismatched entries are ignored."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import bot.validate.index as index_module
from bot.estate import build_estate, read_documents
from bot.flow.trees import estate_of
from bot.gitrepo import GitRepo
from bot.model import ValidationReport
from bot.validate import validate_tree
from bot.validate.cache import ValidationCache, digest_of
from bot.validate.index import FileVerdict

REPO = Path(__file__).resolve().parents[1]
STATE = "infra/state"
GEN = f"{STATE}/gen"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for folder in (STATE, "schemas"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / ".yamllint", root / ".yamllint")
    return root


def _host(i: int, role: str) -> str:
    return (
        f"kind: Host\nname: h{i}\nowner: t\naddress: 127.0.0.1\nconnection: local\n"
        f"roles: [{role}]\n"
    )


def _site(i: int, rng: random.Random) -> str:
    proxy = rng.choice(["proxy1", "proxy1", "dns1", "nowhere", f"h{rng.randrange(8)}"])
    domain = rng.choice([f"s{i}.example.com", "status.example.com", f"s{i}.example.com"])
    return (
        f"kind: Site\nname: s{i}\nowner: t\ndomain: {domain}\n"
        f'upstream: "http://10.77.0.{rng.randrange(10, 30)}:8080"\nproxy: {proxy}\n'
    )


def _dns(i: int, rng: random.Random) -> str:
    server = rng.choice(["dns1", "dns1", "proxy1", "ghost"])
    return (
        f"kind: DnsRecord\nname: s{i}.example.com\nowner: t\nvalue: 127.0.0.1\nserver: {server}\n"
    )


def _container(i: int, rng: random.Random) -> str:
    return (
        f"kind: Container\nname: c{i}\nowner: t\nnode: {rng.choice(['pve1', 'pve1', 'mon1'])}\n"
        f"vmid: {rng.choice([100, 200 + i, 300 + i])}\nhostname: c{i}\n"
        f"ip: 10.77.0.{rng.choice([10, 40 + i, 41 + i])}/24\n"
    )


DEFECTS: list[Callable[[str, random.Random], str]] = [
    lambda t, r: t,
    lambda t, r: t,
    lambda t, r: t,
    lambda t, r: t.replace("owner: t\n", ""),  # policy: no owner
    lambda t, r: t.replace("owner: t", "owner: '{{ x }}'"),  # policy: templating
    lambda t, r: t + "extra_field: 1\n",  # schema
    lambda t, r: t.replace("kind: ", "kind: Nope", 1),  # unknown kind
    lambda t, r: t + "  bad: [\n",  # malformed YAML
    lambda t, r: t.replace("\n", "   \n", 1),  # yamllint: trailing spaces
    lambda t, r: t + "---\n" + t,  # two documents, a duplicate
    lambda t, r: "- just\n- a list\n",  # not a mapping
    lambda t, r: t.replace("name: ", "name: UPPER", 1),  # schema pattern
]


def random_estate(root: Path, rng: random.Random, count: int) -> None:
    makers = [_site, _dns, _container, lambda i, r: _host(i, r.choice(["proxy", "dns", "node"]))]
    for i in range(count):
        text = rng.choice(makers)(i, rng)
        text = rng.choice(DEFECTS)(text, rng)
        path = root / GEN / f"{rng.choice(['a', 'b', 'b/c'])}/doc{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def mutate(root: Path, rng: random.Random, times: int) -> None:
    files = sorted((root / GEN).rglob("*.yaml"))
    for path in rng.sample(files, min(times, len(files))):
        choice = rng.randrange(3)
        if choice == 0:
            path.unlink()
        elif choice == 1:
            path.write_text(rng.choice(DEFECTS)(path.read_text(), rng))
        else:
            path.write_text(_site(rng.randrange(1000, 2000), rng))


def report(root: Path, cache: ValidationCache | None) -> ValidationReport:
    return validate_tree(root, changed_files=[f"{GEN}/x.yaml"], cache=cache)


@pytest.mark.parametrize("seed", range(4))
def test_randomized_estate_reports_the_same_with_and_without_the_cache(
    tree: Path, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    random_estate(tree, rng, 40)
    db = tmp_path / "cache.sqlite"
    for _round in range(2):
        plain = report(tree, None)
        assert report(tree, ValidationCache(db)) == plain  # cold, or after a mutation
        warm = ValidationCache(db)
        assert report(tree, warm) == plain
        assert warm.rejected == 0
        expected = build_estate(read_documents(tree)[0])
        cached = estate_of(tree, ValidationCache(db))
        assert cached == expected
        # the same fields *set*, not only equal: an edit writes back only what the file had
        for key, resource in expected.resources.items():
            assert cached.resources[key].model_fields_set == resource.model_fields_set, key
        mutate(tree, rng, 5)
    assert not plain.ok  # the generator does produce findings of every sort
    assert {f.check for f in plain.findings} >= {"yaml", "yamllint", "schema", "references"}


def test_judging_in_parallel_reports_the_same(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    random_estate(tree, random.Random(42), 80)
    serial = report(tree, None)
    monkeypatch.setattr(index_module, "PARALLEL_FROM", 1)
    assert report(tree, ValidationCache(tmp_path / "c.sqlite")) == serial


def _rows(db: Path) -> list[tuple[str, bytes, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, body, digest FROM verdicts ORDER BY key").fetchall()


def _write_rows(db: Path, rows: list[tuple[str, bytes, str]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", rows)
    conn.close()


def test_a_corrupt_entry_is_ignored_and_rewritten(tree: Path, tmp_path: Path) -> None:
    random_estate(tree, random.Random(7), 30)
    db = tmp_path / "cache.sqlite"
    expected = report(tree, ValidationCache(db))
    damaged = [(k, bytes(b).replace(b'"file"', b'"fil3"'), d) for k, b, d in _rows(db)]
    _write_rows(db, damaged)
    cache = ValidationCache(db)
    assert report(tree, cache) == expected
    assert cache.rejected == len(damaged)
    assert all(digest_of(k, bytes(b)) == d for k, b, d in _rows(db))  # judged again, rewritten


def test_an_entry_filed_under_another_key_is_not_trusted(tree: Path, tmp_path: Path) -> None:
    """A well-formed entry with a correct digest, but made for other inputs: the verdict of a
    valid file planted under the key of a broken one must not hide the breakage."""
    broken = tree / GEN / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(_site(1, random.Random(1)) + "extra_field: 1\n")
    db = tmp_path / "cache.sqlite"
    expected = report(tree, ValidationCache(db))
    assert any(f.file == f"{GEN}/broken.yaml" for f in expected.errors())
    rows = {FileVerdict.model_validate_json(b).file: (k, bytes(b)) for k, b, _ in _rows(db)}
    clean_body = rows["infra/state/sites/status-page.yaml"][1]
    broken_key = rows[f"{GEN}/broken.yaml"][0]
    _write_rows(db, [(broken_key, clean_body, digest_of(broken_key, clean_body))])
    cache = ValidationCache(db)
    assert report(tree, cache) == expected
    assert cache.rejected == 1


def test_a_file_that_is_not_a_database_is_replaced(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "cache.sqlite"
    expected = report(tree, None)
    db.write_bytes(b"this is not SQLite" * 100)
    assert report(tree, ValidationCache(db)) == expected
    assert report(tree, ValidationCache(db)) == expected
    assert _rows(db)  # a working database again, holding the verdicts


@pytest.mark.parametrize(
    "change_rules",
    [
        lambda root: _edit(root / "schemas/Site.schema.json", '"proxy"\n  ]', '"proxy", "tls"]'),
        lambda root: _edit(root / ".yamllint", "max: 160", "max: 20"),
        lambda root: _edit(root / "schemas/policy.yaml", "owner: true", "owner: false"),
    ],
    ids=["schema", "lint-config", "policy"],
)
def test_changed_rules_judge_every_file_again(
    tree: Path, tmp_path: Path, change_rules: Callable[[Path], None]
) -> None:
    (tree / GEN).mkdir(parents=True)
    (tree / GEN / "site.yaml").write_text(
        _site(1, random.Random(3)).replace("owner: t\n", "") + "description: " + "x" * 30 + "\n"
    )
    db = tmp_path / "cache.sqlite"
    before = report(tree, ValidationCache(db))
    change_rules(tree)
    after = report(tree, ValidationCache(db))
    assert after == report(tree, None)
    assert after != before


def test_new_code_misses_every_entry(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cache.sqlite"
    report(tree, ValidationCache(db))
    stored = len(_rows(db))
    monkeypatch.setattr(index_module, "code_version", lambda: "another version of infrabot")
    report(tree, ValidationCache(db))
    assert len(_rows(db)) == 2 * stored  # every file judged again, under new keys


def test_a_file_changed_while_it_was_judged_is_not_cached(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = index_module.judge_file

    def judge_then_edit(root: Path, path: Path, rules: index_module.Rules) -> FileVerdict:
        verdict = judge(root, path, rules)
        if path.name == "status-page.yaml" and "sites" in path.parts:
            path.write_text(path.read_text() + "extra_field: 1\n")
        return verdict

    monkeypatch.setattr(index_module, "judge_file", judge_then_edit)
    db = tmp_path / "cache.sqlite"
    report(tree, ValidationCache(db))
    files = {FileVerdict.model_validate_json(b).file for _, b, _ in _rows(db)}
    assert "infra/state/sites/status-page.yaml" not in files
    assert "infra/state/dns/status.example.com.yaml" in files


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _committed(tree: Path) -> GitRepo:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tree)], check=True)
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "estate")
    return GitRepo(tree)


@pytest.mark.parametrize("seed", range(3))
def test_git_blob_ids_report_the_same_as_hashing(tree: Path, tmp_path: Path, seed: int) -> None:
    """A clean work tree, then a dirty one (edits, deletions, new untracked files), then an
    export of a commit: looked up by git's ids, the report is the one hashing gives."""
    rng = random.Random(seed)
    random_estate(tree, rng, 40)
    repo = _committed(tree)
    db = tmp_path / "cache.sqlite"
    for _round in range(2):
        plain = report(tree, None)
        ids = repo.blob_ids(None, STATE)
        assert ids is not None
        for cache in (ValidationCache(db), ValidationCache(db)):  # cold, then warm
            got = validate_tree(tree, changed_files=[f"{GEN}/x.yaml"], cache=cache, blobs=ids)
            assert got == plain
        assert estate_of(tree, ValidationCache(db), ids) == build_estate(read_documents(tree)[0])
        mutate(tree, rng, 6)
        random_estate(tree / "untracked", rng, 3)
        shutil.copytree(tree / "untracked" / GEN, tree / GEN / "new", dirs_exist_ok=True)
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "more")
    export = repo.export("HEAD", tmp_path / "export")
    expected = report(export, None)
    warm = ValidationCache(db)
    assert (
        validate_tree(
            export, changed_files=[f"{GEN}/x.yaml"], cache=warm, blobs=repo.blob_ids("HEAD", STATE)
        )
        == expected
    )
    assert warm.rejected == 0


def test_blob_ids_are_gits_own_and_leave_out_what_differs(tree: Path) -> None:
    (tree / GEN).mkdir(parents=True)
    for name in ("a", "b", "c"):
        (tree / GEN / f"{name}.yaml").write_text(_site(ord(name), random.Random(1)))
    repo = _committed(tree)
    (tree / GEN / "a.yaml").write_text("edited: true\n")  # dirty: hashed by the caller
    (tree / GEN / "new.yaml").write_text("new: true\n")  # untracked: hashed too
    (tree / GEN / "c.yaml").unlink()
    # git does not look at these: they may differ from the index without diff-files knowing
    (tree / GEN / "d.yaml").write_text(_site(4, random.Random(1)))
    (tree / GEN / "e.yaml").write_text(_site(5, random.Random(1)))
    _git(tree, "add", "-A", f"{GEN}/d.yaml", f"{GEN}/e.yaml")
    _git(tree, "commit", "-q", "-m", "d and e")
    _git(tree, "update-index", "--assume-unchanged", f"{GEN}/d.yaml")
    _git(tree, "update-index", "--skip-worktree", f"{GEN}/e.yaml")
    (tree / GEN / "d.yaml").write_text("edited: true\n")
    ids = repo.blob_ids(None, STATE)
    assert ids is not None
    left_out = {f"{GEN}/{n}.yaml" for n in ["a", "c", "d", "e", "new"]}
    assert f"{GEN}/b.yaml" in ids and not left_out & set(ids)
    for rel, blob in ids.items():
        assert blob == index_module.blob_id((tree / rel).read_bytes()), rel
    at_head = repo.blob_ids("HEAD", STATE)
    assert at_head is not None and at_head[f"{GEN}/a.yaml"] != index_module.blob_id(
        (tree / GEN / "a.yaml").read_bytes()
    )


def test_no_blob_ids_where_git_may_rewrite_the_bytes(tree: Path) -> None:
    """Line-ending conversion, filters or export-subst make a checked-out or archived file
    differ from its blob: then every file is hashed from the bytes read."""
    repo = _committed(tree)
    assert repo.blob_ids("HEAD", STATE)
    (tree / GEN).mkdir(parents=True)
    (tree / GEN / ".gitattributes").write_text("*.yaml text eol=crlf\n")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "attributes")
    assert repo.blob_ids("HEAD", STATE) is None
    assert repo.blob_ids(None, STATE) is None
    assert repo.blob_ids("HEAD~1", STATE)
    _git(tree, "config", "core.autocrlf", "true")
    assert repo.blob_ids("HEAD~1", STATE) is None


def test_a_blob_id_that_is_not_the_files_is_never_cached(tree: Path, tmp_path: Path) -> None:
    """Whoever hands over blob ids may be wrong (a stale listing): the verdict judged from
    the file's bytes is reported, and not filed under the id it was looked up by."""
    broken = tree / GEN / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(_site(1, random.Random(1)) + "extra_field: 1\n")
    expected = report(tree, None)
    rel = f"{GEN}/broken.yaml"
    clean = index_module.blob_id((tree / "infra/state/sites/status-page.yaml").read_bytes())
    db = tmp_path / "cache.sqlite"
    lying = {rel: clean}
    for _run in range(2):
        got = validate_tree(
            tree, changed_files=[f"{GEN}/x.yaml"], cache=ValidationCache(db), blobs=lying
        )
        assert got == expected
    files = {FileVerdict.model_validate_json(b).file for _, b, _ in _rows(db)}
    assert rel not in files and "infra/state/sites/status-page.yaml" in files
