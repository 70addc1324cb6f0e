"""What the Schema Registry does, independent of HTTP: Confluent's semantics and error codes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from k2tui.stack.registry.compatibility import CompatibilityLevel, incompatibilities, parse
from k2tui.stack.registry.store import GLOBAL, RegistryStore, SubjectVersion

DEFAULT_COMPATIBILITY = CompatibilityLevel.BACKWARD
SUPPORTED_TYPES = ("AVRO",)
MAX_VERSION = 2**31 - 1


class RegistryError(Exception):
    """An error as Confluent's registry reports it: HTTP status, error code, message."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: Any) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(detail: str = "Schema not found") -> RegistryError:
    return RegistryError(404, 40403, detail)


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {detail}")


@dataclass(frozen=True, slots=True)
class CandidateSchema:
    """A schema from a request body, parsed and in canonical form for identity."""

    schema_type: str
    text: str
    parsed: Any
    canonical: str


def canonical_form(document: Any) -> str:
    """One text per Avro schema: whitespace, attribute order and ``{"type": "int"}`` vs ``"int"`` do
    not make a different schema (field and symbol order do, and are kept)."""
    return json.dumps(_expand_primitives(document), separators=(",", ":"), sort_keys=True)


def _expand_primitives(node: Any) -> Any:
    if isinstance(node, list):
        return [_expand_primitives(item) for item in node]
    if isinstance(node, dict):
        if set(node) == {"type"} and isinstance(node["type"], str):
            return node["type"]
        return {key: _expand_primitives(value) for key, value in node.items()}
    return node


def parse_candidate(body: Any) -> CandidateSchema:
    if not isinstance(body, dict):
        raise RegistryError(422, 42201, "Invalid schema: the request body must be a JSON object")
    text = body.get("schema")
    if not isinstance(text, str) or not text.strip():
        raise invalid_schema("the request has no 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type not in SUPPORTED_TYPES:
        raise invalid_schema(f"schema type {schema_type} is not supported; this registry stores AVRO schemas")
    if body.get("references"):
        raise invalid_schema("schema references are not supported; inline the referenced types")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise invalid_schema(f"not JSON: {error}") from error
    try:
        parse(document)
        _check_aliases(document)
    except Exception as error:  # fastavro reports invalid schemas with several exception types
        raise invalid_schema(f"{type(error).__name__}: {error}") from error
    return CandidateSchema(schema_type, text, document, canonical_form(document))


def _check_aliases(node: Any) -> None:
    """fastavro lets ``"aliases": null`` through; Avro requires a list of names."""
    if isinstance(node, list):
        for item in node:
            _check_aliases(item)
    elif isinstance(node, dict):
        aliases = node.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError(f"aliases of {node.get('name', 'a field')} must be a list of names")
        for value in node.values():
            _check_aliases(value)


def parse_level(value: Any) -> CompatibilityLevel:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return CompatibilityLevel(value.upper())
    except ValueError:
        raise RegistryError(
            422,
            42203,
            "Invalid compatibility level. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive",
        ) from None


def parse_version(text: str) -> int | None:
    """A version number, or None for ``latest`` (and ``-1``, its alias)."""
    if text in ("latest", "-1"):
        return None
    version = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= version <= MAX_VERSION:
        raise RegistryError(
            422,
            42202,
            f"The specified version '{text}' is not a valid version id. "
            f'Allowed values are between [1, {MAX_VERSION}] and the string "latest"',
        )
    return version


def version_view(entry: SubjectVersion) -> dict[str, Any]:
    view: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.text,
    }
    if entry.schema_type != "AVRO":
        view["schemaType"] = entry.schema_type
    return view


class SchemaRegistry:
    def __init__(self, store: RegistryStore):
        self.store = store

    def level_for(self, subject: str) -> CompatibilityLevel:
        level = self.store.compatibility(subject) or self.store.compatibility(GLOBAL)
        return CompatibilityLevel(level) if level else DEFAULT_COMPATIBILITY

    def register(self, subject: str, candidate: CandidateSchema) -> int:
        with self.store.transaction():
            live = self.store.versions(subject)
            known_id = self.store.find_schema_id(candidate.schema_type, candidate.canonical)
            if known_id is not None and any(e.schema_id == known_id for e in live):
                return known_id
            problems = incompatibilities(
                self.level_for(subject), candidate.parsed, [json.loads(e.text) for e in live]
            )
            if problems:
                raise RegistryError(
                    409,
                    409,
                    f"Schema being registered is incompatible with an earlier schema for subject "
                    f'"{subject}", details: {problems}',
                )
            schema_id = self.store.schema_id_for(candidate.schema_type, candidate.canonical, candidate.text)
            self.store.add_version(subject, schema_id)
            return schema_id

    def lookup(self, subject: str, candidate: CandidateSchema, *, deleted: bool) -> dict[str, Any]:
        entries = self._existing(subject, include_deleted=deleted)
        known_id = self.store.find_schema_id(candidate.schema_type, candidate.canonical)
        for entry in reversed(entries):
            if entry.schema_id == known_id:
                return version_view(entry)
        raise schema_not_found()

    def subjects(self, *, deleted: bool) -> list[str]:
        return self.store.subjects(include_deleted=deleted)

    def versions(self, subject: str, *, deleted: bool) -> list[int]:
        return [e.version for e in self._existing(subject, include_deleted=deleted)]

    def version(self, subject: str, version_text: str, *, deleted: bool = False) -> SubjectVersion:
        version = parse_version(version_text)
        entries = self._existing(subject, include_deleted=deleted)
        if version is None:
            live = [e for e in entries if not e.deleted]
            if not live:
                raise version_not_found(version_text)
            return live[-1]
        for entry in entries:
            if entry.version == version:
                return entry
        raise version_not_found(version)

    def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        with self.store.transaction():
            entries = self._existing(subject, include_deleted=True)
            live = [e for e in entries if not e.deleted]
            if permanent:
                if live:
                    raise RegistryError(
                        404,
                        40405,
                        f"Subject '{subject}' was not deleted first before being permanently deleted",
                    )
                for entry in entries:
                    self.store.hard_delete(subject, entry.version)
                self.store.delete_compatibility(subject)
                return [e.version for e in entries]
            if not live:
                raise RegistryError(
                    404,
                    40404,
                    f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently",
                )
            for entry in live:
                self.store.soft_delete(subject, entry.version)
            return [e.version for e in live]

    def delete_version(self, subject: str, version_text: str, *, permanent: bool) -> int:
        with self.store.transaction():
            entry = self.version(subject, version_text, deleted=True)
            if permanent:
                if not entry.deleted:
                    raise RegistryError(
                        404,
                        40407,
                        f"Subject '{subject}' Version {entry.version} was not deleted first "
                        "before being permanently deleted",
                    )
                self.store.hard_delete(subject, entry.version)
            else:
                if entry.deleted:
                    raise RegistryError(
                        404,
                        40406,
                        f"Subject '{subject}' Version {entry.version} was soft deleted."
                        "Set permanent=true to delete permanently",
                    )
                self.store.soft_delete(subject, entry.version)
            return entry.version

    def schema(self, schema_id: int) -> tuple[str, str]:
        found = self.store.schema_by_id(schema_id) if 0 < schema_id <= MAX_VERSION else None
        if found is None:
            raise schema_not_found(f"Schema {schema_id} not found")
        return found

    def schema_usage(self, schema_id: int) -> list[tuple[str, int]]:
        self.schema(schema_id)
        return self.store.subject_versions_of_schema(schema_id)

    def check_compatibility(
        self, subject: str, candidate: CandidateSchema, version_text: str | None
    ) -> list[str]:
        """Problems of `candidate` against one version, or against all the level covers."""
        level = self.level_for(subject)
        if version_text is None:
            previous = [json.loads(e.text) for e in self.store.versions(subject)]
            return incompatibilities(level, candidate.parsed, previous)
        entry = self.version(subject, version_text)
        return incompatibilities(level, candidate.parsed, [json.loads(entry.text)])

    def subject_level(self, subject: str, *, default_to_global: bool) -> CompatibilityLevel:
        level = self.store.compatibility(subject)
        if level:
            return CompatibilityLevel(level)
        if default_to_global:
            return self.level_for(GLOBAL)
        raise RegistryError(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )

    def set_level(self, subject: str, level: CompatibilityLevel) -> None:
        self.store.set_compatibility(subject, level.value)

    def delete_subject_level(self, subject: str) -> CompatibilityLevel:
        level = self.subject_level(subject, default_to_global=False)
        self.store.delete_compatibility(subject)
        return level

    def _existing(self, subject: str, *, include_deleted: bool) -> list[SubjectVersion]:
        entries = self.store.versions(subject, include_deleted=include_deleted)
        if not entries:
            raise subject_not_found(subject)
        return entries
