"""The lake's FileIO keeps the Avro metadata files it wrote or read, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.io.pyarrow import PyArrowFile

from k2tui.lake import fileio
from k2tui.lake.fileio import LARGEST_KEPT, LakeFileIO, _RecordedStream
from k2tui.lake.lru import ByteLru

pytestmark = pytest.mark.unit
Kept = ByteLru[str, bytes]


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> Kept:
    files: Kept = ByteLru(1 << 20, len)
    monkeypatch.setattr(fileio, "KEPT", files)
    return files


def _write(io: LakeFileIO, location: str, data: bytes) -> None:
    with io.new_output(location).create() as stream:
        stream.write(data)


def _read(io: LakeFileIO, location: str) -> bytes:
    with io.new_input(location).open() as stream:
        return stream.read()


def test_a_manifest_list_written_is_read_back_without_the_store(tmp_path: Path, kept: Kept) -> None:
    io = LakeFileIO()
    on_disk = tmp_path / "metadata" / "snap-1-0-a1b2.avro"
    _write(io, f"file://{on_disk}", b"Obj\x01 a manifest list")
    assert on_disk.read_bytes() == b"Obj\x01 a manifest list"  # written through to the store
    on_disk.unlink()  # so only a kept copy can answer
    file = io.new_input(f"file://{on_disk}")
    assert file.exists() and len(file) == len(b"Obj\x01 a manifest list")
    assert _read(io, f"file://{on_disk}") == b"Obj\x01 a manifest list"


def test_a_manifest_read_once_is_served_from_memory_after(tmp_path: Path, kept: Kept) -> None:
    io = LakeFileIO()
    on_disk = tmp_path / "metadata" / "c3d4-m0.avro"
    on_disk.parent.mkdir()
    on_disk.write_bytes(b"Obj\x01 written by another process")
    assert _read(io, f"file://{on_disk}") == b"Obj\x01 written by another process"
    on_disk.unlink()
    assert _read(io, f"file://{on_disk}") == b"Obj\x01 written by another process"


def test_deleting_through_the_lake_io_forgets_the_copy(tmp_path: Path, kept: Kept) -> None:
    io = LakeFileIO()
    location = f"file://{tmp_path}/metadata/snap-2-0-e5f6.avro"
    _write(io, location, b"Obj\x01 expired")
    io.delete(location)
    assert not io.new_input(location).exists()
    assert kept.used == 0


def test_a_kept_file_is_not_created_again_without_overwrite(tmp_path: Path, kept: Kept) -> None:
    io = LakeFileIO()
    location = f"file://{tmp_path}/metadata/snap-3-0-0a0b.avro"
    _write(io, location, b"Obj\x01 first")
    with pytest.raises(FileExistsError, match="already exists"):
        io.new_output(location).create()


def test_data_files_are_pyarrows_own_and_table_metadata_is_not_kept(tmp_path: Path, kept: Kept) -> None:
    io = LakeFileIO()
    data_file = f"file://{tmp_path}/data/day=2026-11-23/00000-0-a.parquet"
    assert type(io.new_input(data_file)) is PyArrowFile and type(io.new_output(data_file)) is PyArrowFile
    metadata = tmp_path / "metadata" / "00001-9f8e.metadata.json"
    _write(io, f"file://{metadata}", b'{"format-version": 2}')
    assert kept.used == 0  # the catalog keeps table metadata parsed
    # Its name is fresh, so no existence check is asked of the store before writing it.
    _write(io, f"file://{metadata}", b'{"format-version": 2, "again": true}')
    assert metadata.read_bytes() == b'{"format-version": 2, "again": true}'


class _FailingUpload:
    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        raise OSError("the object store reset the connection")


def test_a_failed_upload_reports_and_keeps_nothing() -> None:
    stored: list[bytes] = []
    upload = _RecordedStream(_FailingUpload(), stored.append)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="reset"), upload as stream:
        stream.write(b"Obj\x01 never stored")
    assert stored == []


def test_the_least_recently_used_files_go_first_beyond_the_limit() -> None:
    files: ByteLru[str, bytes] = ByteLru(100, len)
    files.put("a", b"a" * 40)
    files.put("b", b"b" * 40)
    assert files.get("a") is not None  # b is now the least recently used
    files.put("c", b"c" * 40)
    assert files.get("b") is None and files.get("a") is not None and files.get("c") is not None
    assert files.used == 80
    large: ByteLru[str, bytes] = ByteLru(1 << 30, len, largest=LARGEST_KEPT)
    large.put("huge", b"x" * (LARGEST_KEPT + 1))
    assert large.get("huge") is None and large.used == 0
