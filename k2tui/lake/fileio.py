"""The lake's FileIO: PyArrow's, uploading each file in one request and remembering metadata.

Iceberg never rewrites a metadata file: every manifest, manifest list and table metadata file is
written once under a name that carries a UUID. So a 500-row append need not ask the object store for
the length of the manifest it has just written (a HEAD), read back the manifest list the previous
append wrote (a HEAD and a ranged GET), or check that the metadata file it is about to write under a
fresh name is absent (a HEAD, then a LIST when it is). Manifests and manifest lists stay in memory,
so expiry, which reads every retained manifest on each run, reads them from there. Data files are
written as pyiceberg writes them: a Python stream under pyarrow's Parquet writer, to learn their
length, cost 8-22 MB of peak RSS with 20,000-row batches, more than the HEAD it saved.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from types import TracebackType

from pyarrow.fs import FileSystem
from pyiceberg.io import InputFile, InputStream, OutputFile, OutputStream
from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

from k2tui.lake.lru import ByteLru

KEPT_BYTES = 16 * 2**20
"""Memory the kept files may take in a process (least recently used go first)."""
LARGEST_KEPT = 2 * 2**20
"""Larger files are never kept: one would push out hundreds of manifests."""

KEPT: ByteLru[str, bytes] = ByteLru(KEPT_BYTES, len, largest=LARGEST_KEPT)
"""Files' bytes by location, one cache a process: pyiceberg makes a FileIO for every table it loads."""


def is_kept_in_memory(location: str) -> bool:
    """A manifest or manifest list: Avro metadata, written once and read back by the next append.

    Table metadata files are not kept: the catalog keeps them parsed.
    """
    return "/metadata/" in location and location.endswith(".avro")


class _RecordedStream:
    """An output stream that hands what was written to `on_stored` once the object store has it."""

    def __init__(self, stream: OutputStream, on_stored: Callable[[bytes], None]) -> None:
        self._stream = stream
        self._on_stored = on_stored
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.close()  # the upload: nothing is kept when it fails
        self._on_stored(b"".join(self._parts))

    def __enter__(self) -> _RecordedStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stream.close()


class LakeFile(InputFile, OutputFile):
    """A metadata file, created without an existence check, served from a kept copy when there is one.

    `kept` is None for table metadata, which the catalog keeps parsed instead.
    """

    def __init__(self, file: PyArrowFile, kept: ByteLru[str, bytes] | None) -> None:
        super().__init__(file.location)
        self._file = file
        self._kept = kept

    def __len__(self) -> int:
        data = self._copy()
        return len(data) if data is not None else len(self._file)

    def exists(self) -> bool:
        return self._copy() is not None or self._file.exists()

    def open(self, seekable: bool = True) -> InputStream:
        if self._kept is None:
            return self._file.open(seekable)
        data = self._copy()
        if data is None:
            with self._file.open(seekable=False) as stream:  # one GET: a seekable file costs a HEAD first
                data = stream.read()
            self._kept.put(self.location, data)
        return io.BytesIO(data)

    def create(self, overwrite: bool = False) -> OutputStream:
        """Skips the object store's existence check: names are never reused (see the module)."""
        if not overwrite and self._copy() is not None:
            raise FileExistsError(f"Cannot create file, already exists: {self.location}")
        stream = self._file.create(overwrite=True)
        if self._kept is None:
            return stream
        return _RecordedStream(stream, partial(self._kept.put, self.location))

    def to_input_file(self) -> LakeFile:
        return self

    def _copy(self) -> bytes | None:
        return self._kept.get(self.location) if self._kept is not None else None


class LakeFileIO(PyArrowFileIO):
    """PyArrow's FileIO, keeping the Avro metadata it wrote or read (see the module)."""

    def new_input(self, location: str) -> InputFile:
        file = super().new_input(location)
        return LakeFile(file, KEPT) if is_kept_in_memory(location) else file

    def new_output(self, location: str) -> OutputFile:
        file = super().new_output(location)
        if "/metadata/" not in location:
            return file  # a data file (see the module)
        return LakeFile(file, KEPT if is_kept_in_memory(location) else None)

    def _initialize_s3_fs(self, netloc: str | None) -> FileSystem:
        """pyiceberg's S3 filesystem, but a file opened for writing starts its upload when written.

        An object then goes up in one PUT, where an upload begun at open is multipart: a POST to
        begin, a PUT, a POST to finish (9.8 against 3.9 ms for a 30 KB object here). A failure to
        reach the store is raised when the file is closed, which every writer of the lake does.
        """
        s3 = super()._initialize_s3_fs(netloc)
        rebuild, (options,) = s3.__reduce__()  # the options pyiceberg chose, as pickling sees them
        return rebuild({**options, "allow_delayed_open": True})  # type: ignore[no-any-return]

    def delete(self, location: str | InputFile | OutputFile) -> None:
        path = location if isinstance(location, str) else location.location
        KEPT.forget(path)
        super().delete(path)
