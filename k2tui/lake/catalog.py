"""Opening the ``k2`` Iceberg catalog and making sure the trades table exists."""

from __future__ import annotations

import contextlib

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.table import Table
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

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


def open_catalog(layout: StackLayout) -> SqlCatalog:
    return SqlCatalog(layout.endpoints.catalog_name, **catalog_properties(layout))


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
