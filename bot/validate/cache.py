"""Per-file validation verdicts kept between runs, in one SQLite file under ``.infrabot/``.

Theory of operation: a verdict is stored under the key ``bot.validate.index.verdict_key``
computed from everything it depends on (path, git blob id, rule files, code), so a change to
any of them is simply a different key: an entry can never be looked up for inputs it was not
made from.  What comes back is still checked before it is used, and anything that fails a
check is ignored (the file is judged again and its entry rewritten), never trusted:

- each row carries a SHA-256 digest of its key and body; a row whose digest does not match
  (a flipped bit, a truncated copy) is corrupt;
- the body names the key it was made for; a body filed under another key is stale;
- the body must parse into a ``FileVerdict``;
- a file that is not a readable SQLite database (a broken restore) is set aside and replaced.

The cache is an optimisation only: when it cannot be read or written, validation runs in
full and says the same thing.  The digest detects damage, not forgery: whoever can write
``.infrabot/`` can also change the code that reads it (see docs/adr/0007-*).  Verdicts read
or written in this process are also kept in memory, so a check that indexes the same tree
twice (validation, then the estate) reads the database once.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from bot.validate.index import FileVerdict

KEEP_AT_LEAST = 200_000
"""Rows kept when pruning: several estates' worth, so main and its PRs stay cached."""
_CHUNK = 500
_VERDICTS: TypeAdapter[list[FileVerdict]] = TypeAdapter(list[FileVerdict])
_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    digest TEXT NOT NULL
)
"""


def digest_of(key: str, body: bytes) -> str:
    return hashlib.sha256(key.encode() + b"\0" + body).hexdigest()


class ValidationCache:
    """Verdicts by key in ``path`` (created on first write), plus this process's memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._memory: dict[str, FileVerdict] = {}
        self.rejected = 0
        """Entries found corrupt or stale in this process (for tests and the benchmark)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, FileVerdict]:
        found = {k: self._memory[k] for k in keys if k in self._memory}
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if wanted and self.path.is_file():
            rows = self._read(wanted)
            from_disk = self._checked(rows)
            self._memory.update(from_disk)
            found.update(from_disk)
        return found

    def put_many(self, verdicts: Sequence[FileVerdict]) -> None:
        rows = []
        for verdict in verdicts:
            self._memory[verdict.key] = verdict
            body = verdict.model_dump_json(exclude_unset=True).encode()
            rows.append((verdict.key, body, digest_of(verdict.key, body)))
        self._write(rows)

    def _read(self, keys: list[str]) -> list[tuple[str, bytes, str]]:
        rows: list[tuple[str, bytes, str]] = []
        try:
            with self._connect() as db:
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key, body, digest FROM verdicts WHERE key IN ({marks})"
                    rows += db.execute(query, chunk).fetchall()
        except sqlite3.DatabaseError:
            self._set_aside()
            return []
        return rows

    def _checked(self, rows: list[tuple[str, bytes, str]]) -> dict[str, FileVerdict]:
        intact = [(k, bytes(b)) for k, b, d in rows if digest_of(k, bytes(b)) == d]
        self.rejected += len(rows) - len(intact)
        pairs: list[tuple[str, FileVerdict | None]]
        try:  # one parse for every row is much faster; it fails only on a damaged row
            parsed = _VERDICTS.validate_json(b"[" + b",".join(b for _, b in intact) + b"]")
            pairs = list(zip([k for k, _ in intact], parsed, strict=True))
        except (ValidationError, ValueError):
            pairs = [(k, _parse(b)) for k, b in intact]
        good = {k: v for k, v in pairs if v is not None and v.key == k}
        self.rejected += len(pairs) - len(good)
        return good

    def _write(self, rows: list[tuple[str, bytes, str]]) -> None:
        for _attempt in range(2):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self._connect() as db:
                    db.execute(_SCHEMA)
                    db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", rows)
                    db.execute(
                        "DELETE FROM verdicts WHERE rowid <= (SELECT max(rowid) FROM verdicts) - ?",
                        (max(KEEP_AT_LEAST, 5 * len(rows)),),
                    )
                return
            except sqlite3.OperationalError:
                return  # busy or read-only: the next run judges these files again
            except sqlite3.DatabaseError:
                self._set_aside()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _set_aside(self) -> None:
        """Not a database any more (a broken copy or restore): start a fresh one."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()


def _parse(body: bytes) -> FileVerdict | None:
    try:
        return FileVerdict.model_validate_json(body)
    except ValidationError:
        return None
