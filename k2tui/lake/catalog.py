"""Opening the ``k2`` Iceberg catalog and making sure the trades table exists."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.io import PY_IO_IMPL, FileIO
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from k2tui.lake.fileio import LakeFileIO
from k2tui.lake.table import (
    NAMESPACE,
    TABLE_IDENTIFIER,
    TRADES_V2_PARTITIONING,
    TRADES_V2_PROPERTIES,
    TRADES_V2_SCHEMA,
    TRADES_V2_SORT_ORDER,
)
from k2tui.stack.layout import StackLayout
from k2tui.stack.services import catalog_properties

LAKE_FILE_IO = f"{LakeFileIO.__module__}.{LakeFileIO.__name__}"
KEPT_METADATA = 4
"""Metadata files a catalog keeps parsed: the current one, and a few a slow reader may still hold."""


class LakeCatalog(SqlCatalog):
    """A SQL catalog that parses each table metadata file once.

    A metadata file never changes once written, so the catalog keeps the newest few it has read or
    written, by location. pyiceberg reads the table's current metadata back before every commit, and
    so does every refresh: at 250 snapshots that read and its parsing were 25 ms of a 156 ms 500-row
    append. The catalog's row is still read each time, so another process's commit is seen as before.
    """

    def __init__(self, name: str, **properties: Any) -> None:
        super().__init__(name, **properties)
        self._parsed: OrderedDict[str, TableMetadata] = OrderedDict()
        self._lock = threading.Lock()  # the API reads from several threads

    def _convert_orm_to_iceberg(self, orm_table: IcebergTables) -> Table:
        location = orm_table.metadata_location
        with self._lock:
            metadata = self._parsed.get(location)
        if metadata is None or not orm_table.table_namespace or not orm_table.table_name:
            table = super()._convert_orm_to_iceberg(orm_table)
            self._keep(table.metadata_location, table.metadata)
            return table
        self._keep(location, metadata)
        return Table(
            identifier=(*Catalog.identifier_to_tuple(orm_table.table_namespace), orm_table.table_name),
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def _write_metadata(self, metadata: TableMetadata, io: FileIO, metadata_path: str) -> None:  # type: ignore[override]
        super()._write_metadata(metadata, io, metadata_path)
        self._keep(metadata_path, metadata)

    def _keep(self, location: str, metadata: TableMetadata) -> None:
        with self._lock:
            self._parsed[location] = metadata
            self._parsed.move_to_end(location)
            while len(self._parsed) > KEPT_METADATA:
                self._parsed.popitem(last=False)


def open_catalog(layout: StackLayout) -> LakeCatalog:
    """The catalog, whose tables read and write through `LakeFileIO`."""
    return LakeCatalog(
        layout.endpoints.catalog_name, **catalog_properties(layout), **{PY_IO_IMPL: LAKE_FILE_IO}
    )


class LakeUnavailableError(RuntimeError):
    """The catalog or the object store behind it cannot be reached; the message says what to do."""


def open_trades_table(layout: StackLayout) -> Table:
    """The trades table, created when missing, or a plain LakeUnavailableError naming the catalog."""
    try:
        return ensure_trades_table(open_catalog(layout))[0]
    except (SQLAlchemyError, OSError) as error:
        raise LakeUnavailableError(
            f"cannot open the Iceberg table at {layout.endpoints.catalog_uri} ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0]}); start the stack with `k2tui up`"
        ) from error


def ensure_trades_table(catalog: SqlCatalog, identifier: str = TABLE_IDENTIFIER) -> tuple[Table, bool]:
    """The trades table (or one defined like it), created with its namespace when missing; True when new."""
    # IntegrityError: another process (the API, the consumer) created it between the check and the insert.
    with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
        catalog.create_namespace(NAMESPACE)
    try:
        table = catalog.create_table(
            identifier,
            schema=TRADES_V2_SCHEMA,
            partition_spec=TRADES_V2_PARTITIONING,
            sort_order=TRADES_V2_SORT_ORDER,
            properties=TRADES_V2_PROPERTIES,
        )
    except (TableAlreadyExistsError, IntegrityError):
        table = catalog.load_table(identifier)
        missing = {k: v for k, v in TRADES_V2_PROPERTIES.items() if table.properties.get(k) != v}
        if missing:
            with table.transaction() as change:
                change.set_properties(missing)
        return table, False
    return table, True
