"""The registry's durable state in one SQLite file: schemas by id, subject versions, compatibility config.

Ids are global, as in Confluent's registry: the same schema text registered under two subjects has
one id. Deletes are soft first (hidden unless asked for) and permanent only after that.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GLOBAL = ""

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY,
    schema_type TEXT NOT NULL,
    canonical TEXT NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (schema_type, canonical)
);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (
    subject TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    subject: str
    version: int
    schema_id: int
    schema_type: str
    text: str
    deleted: bool


class RegistryStore:
    """Thread-safe: one connection, one lock, every multi-step change in one transaction."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA_SQL)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def schema_id_for(self, schema_type: str, canonical: str, text: str) -> int:
        """The id of this schema, creating it if it is new."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM schemas WHERE schema_type = ? AND canonical = ?", (schema_type, canonical)
            ).fetchone()
            if row:
                return int(row[0])
            cursor = self._db.execute(
                "INSERT INTO schemas (schema_type, canonical, text) VALUES (?, ?, ?)",
                (schema_type, canonical, text),
            )
            return int(cursor.lastrowid or 0)

    def find_schema_id(self, schema_type: str, canonical: str) -> int | None:
        row = self._query_one(
            "SELECT id FROM schemas WHERE schema_type = ? AND canonical = ?", (schema_type, canonical)
        )
        return int(row[0]) if row else None

    def schema_by_id(self, schema_id: int) -> tuple[str, str] | None:
        """(schema_type, text) of an id."""
        row = self._query_one("SELECT schema_type, text FROM schemas WHERE id = ?", (schema_id,))
        return (row[0], row[1]) if row else None

    def add_version(self, subject: str, schema_id: int) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(version) FROM versions WHERE subject = ?", (subject,)
            ).fetchone()
            version = (row[0] or 0) + 1
            self._db.execute(
                "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, version, schema_id),
            )
            return version

    def versions(self, subject: str, *, include_deleted: bool = False) -> list[SubjectVersion]:
        """The subject's versions, oldest first."""
        sql = (
            "SELECT v.subject, v.version, v.schema_id, s.schema_type, s.text, v.deleted "
            "FROM versions v JOIN schemas s ON s.id = v.schema_id WHERE v.subject = ?"
        )
        if not include_deleted:
            sql += " AND v.deleted = 0"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY v.version", (subject,)).fetchall()
        return [SubjectVersion(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def subjects(self, *, include_deleted: bool = False) -> list[str]:
        where = "" if include_deleted else " WHERE deleted = 0"
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT subject FROM versions{where} ORDER BY subject"
            ).fetchall()
        return [r[0] for r in rows]

    def subject_versions_of_schema(self, schema_id: int) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT subject, version FROM versions WHERE schema_id = ? AND deleted = 0 "
                "ORDER BY subject, version",
                (schema_id,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def soft_delete(self, subject: str, version: int) -> None:
        self._execute("UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?", (subject, version))

    def hard_delete(self, subject: str, version: int) -> None:
        self._execute("DELETE FROM versions WHERE subject = ? AND version = ?", (subject, version))

    def compatibility(self, subject: str = GLOBAL) -> str | None:
        row = self._query_one("SELECT compatibility FROM config WHERE subject = ?", (subject,))
        return row[0] if row else None

    def set_compatibility(self, subject: str, level: str) -> None:
        self._execute(
            "INSERT INTO config (subject, compatibility) VALUES (?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET compatibility = excluded.compatibility",
            (subject, level),
        )

    def delete_compatibility(self, subject: str) -> None:
        self._execute("DELETE FROM config WHERE subject = ?", (subject,))

    def _execute(self, sql: str, params: tuple[object, ...]) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def _query_one(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()
