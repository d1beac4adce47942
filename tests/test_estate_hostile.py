"""Hostile state files: each is a finding with its file (and line where there is one), never an
exception, a hang, a read outside the tree or a blown memory budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.estate.documents import Limits, read_documents, scan_state, state_files
from bot.validate import validate_tree

STATE = "infra/state"


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / STATE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def only_finding(root: Path, limits: Limits | None = None) -> tuple[str | None, int | None, str]:
    _, findings = read_documents(root, limits)
    assert len(findings) == 1, findings
    return findings[0].file, findings[0].line, findings[0].message


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    write(tmp_path, "bomb.yaml", "kind: Host\n" + alias_bomb())
    file, line, message = only_finding(tmp_path)
    assert (file, line) == (f"{STATE}/bomb.yaml", 2)
    assert "anchor &a0" in message and "refused" in message


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("a: 1\nb: *x\n", 2, "alias *x"),  # an alias to nothing is refused as well
        ("a: &x 1\n", 1, "anchor &x"),
        ("a: 1\nb: !!binary aGk=\n", 2, "tag tag:yaml.org,2002:binary"),
        ("a: !!python/object:os.system x\n", 1, "tag tag:yaml.org,2002:python/object"),
        ("a: 1\n---\nb: !!bool maybe\n", 3, "tags are refused"),
        ("a: 2001-13-45\n", 1, "a value cannot be read"),
        ("x: 1\n---\na: " + "1" * 5000 + "\n", 3, "a value cannot be read"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", 1, "limits.max_depth"),
        ("a: [oops\n", 2, "malformed YAML"),
    ],
    ids=["alias", "anchor", "binary", "python", "bool-tag", "date", "long-int", "deep", "syntax"],
)
def test_what_ruamel_would_choke_on_is_a_finding_on_its_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    write(tmp_path, "x.yaml", text)
    file, found_line, message = only_finding(tmp_path)
    assert file == f"{STATE}/x.yaml" and found_line == line and needle in message, message


def test_non_utf8_text_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    write(tmp_path, "latin1.yaml", "kind: Host\nowner: caf\xe9\n".encode("latin-1"))
    file, line, message = only_finding(tmp_path)
    assert (file, line) == (f"{STATE}/latin1.yaml", 2)
    assert "not UTF-8" in message and "0xe9" in message and "column 11" in message


def test_links_and_special_files_are_never_followed_or_opened(tmp_path: Path) -> None:
    write(tmp_path, "hosts/ok.yaml", "kind: Host\nname: a\n")
    (tmp_path / STATE / "passwd.yaml").symlink_to("/etc/passwd")
    (tmp_path / STATE / "twin.yaml").symlink_to("hosts/ok.yaml")
    (tmp_path / STATE / "linked-dir").symlink_to(tmp_path / STATE / "hosts")
    os.mkfifo(tmp_path / STATE / "pipe.yaml")  # opening it would block forever
    docs, findings = read_documents(tmp_path)
    assert [d.file for d in docs] == [f"{STATE}/hosts/ok.yaml"]
    refused = {f.file: f.message for f in findings}
    assert set(refused) == {
        f"{STATE}/{n}" for n in ("passwd.yaml", "twin.yaml", "linked-dir", "pipe.yaml")
    }
    assert "symbolic link" in refused[f"{STATE}/passwd.yaml"]
    assert "named pipe" in refused[f"{STATE}/pipe.yaml"]
    assert all("root:" not in m for m in refused.values())
    assert state_files(tmp_path) == [tmp_path / STATE / "hosts/ok.yaml"]


def test_a_linked_state_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / STATE).symlink_to("/etc")
    file, _, message = only_finding(tmp_path)
    assert file == STATE and "symbolic link" in message


def test_caps_from_policy(tmp_path: Path) -> None:
    write(tmp_path, "big.yaml", "kind: Host\n" + "# padding\n" * 100)
    file, _, message = only_finding(tmp_path, Limits(max_file_bytes=100))
    assert file == f"{STATE}/big.yaml" and "limits.max_file_bytes" in message
    (tmp_path / STATE / "big.yaml").unlink()
    for i in range(3):
        write(tmp_path, f"f{i}.yaml", "a: 1\n---\nb: 2\n")
    docs, findings = read_documents(tmp_path, Limits(max_documents=5))
    assert len(docs) == 4 and len(findings) == 1
    assert findings[0].file == f"{STATE}/f2.yaml" and "limits.max_documents" in findings[0].message
    docs, findings = read_documents(tmp_path, Limits(max_files=2))
    assert len(docs) == 4 and "limits.max_files" in findings[0].message


def test_the_caps_are_read_from_policy_yaml(seed_tree: Path) -> None:
    policy = seed_tree / "schemas/policy.yaml"
    policy.write_text(policy.read_text().replace("max_file_bytes: 1048576", "max_file_bytes: 64"))
    report = validate_tree(seed_tree)
    assert any("limits.max_file_bytes: 64" in f.message for f in report.findings)
    assert not any(f.check == "yamllint" for f in report.findings)  # refused unread, not linted


# --- Properties: no input makes the loader raise (anything at all: it has no errors of its own
# to raise; everything it cannot read is a finding).

YAML_ALPHABET = st.sampled_from(
    [*":-[]{}&*!|>'\"#%@`,?\n \t", "a", "b", "1", "0", ".", "~", "\\", "\x00", "é", "---"]
)
yaml_like = st.lists(YAML_ALPHABET, max_size=120).map("".join)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "fuzz.yaml", data)
    _, findings = read_documents(tmp_path)
    assert all(f.file == f"{STATE}/fuzz.yaml" for f in findings)
    path.unlink()


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    _read(tmp_path, data)


@SETTINGS
@given(text=yaml_like)
def test_random_yaml_never_raises(tmp_path: Path, text: str) -> None:
    _read(tmp_path, text.encode("utf-8"))


scalars = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.sampled_from(["2001-13-45", "0o99", "1e9999", ".nan", "<<", "!!str x", "*a", "&a x"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


def _dump(value: object, indent: int = 0) -> str:
    """Block-style YAML with scalars written raw (unquoted): the loader sees what a person
    could type, not what a serializer would make safe."""
    pad = " " * indent
    if isinstance(value, dict):
        return "".join(f"{pad}{k}:\n{_dump(v, indent + 2)}" for k, v in value.items()) or "{}\n"
    if isinstance(value, list):
        return "".join(f"{pad}-\n{_dump(v, indent + 2)}" for v in value) or f"{pad}[]\n"
    return f"{pad}{value}\n"


@settings(SETTINGS, max_examples=40)
@given(doc=documents)
def test_random_documents_never_raise_and_validation_reports_them(
    seed_tree: Path, doc: object
) -> None:
    path = write(seed_tree, "fuzz.yaml", "kind: Container\n" + _dump({"extra": doc}))
    report = validate_tree(seed_tree)  # every check, on whatever the loader built
    assert not report.ok
    path.unlink()


def test_a_change_over_the_file_cap_is_refused(seed_tree: Path) -> None:
    policy = seed_tree / "schemas/policy.yaml"
    policy.write_text(policy.read_text().replace("max_changed_files: 500", "max_changed_files: 2"))
    changed = [f"{STATE}/dns/r{i}.yaml" for i in range(3)]
    report = validate_tree(seed_tree, changed_files=changed)
    assert [f.check for f in report.errors()] == ["paths"]
    assert "limits.max_changed_files: 2" in report.errors()[0].message
    assert validate_tree(seed_tree, changed_files=changed[:2]).ok


def test_state_files_come_in_path_order_whatever_their_names(tmp_path: Path) -> None:
    """The walk keeps names as strings; the order must still be the one paths sort in
    (segment by segment: ``a/b/c`` before ``a/b-c``), as duplicates name the first."""
    names = ["a/b/c.yaml", "a/b-c.yaml", "a/b.yaml", "a.b/x.yml", "a/..yaml", "a/.yaml", "z.YAML"]
    for name in names:
        path = tmp_path / "infra" / "state" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("kind: Host\n")
    files, _ = scan_state(tmp_path, Limits())
    expected = sorted(
        p for p in (tmp_path / "infra" / "state").rglob("*") if p.suffix in (".yaml", ".yml")
    )
    assert files == expected
    assert [p.name for p in files] == ["..yaml", "c.yaml", "b-c.yaml", "b.yaml", "x.yml"]
