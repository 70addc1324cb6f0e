"""An Iceberg transaction that works out its pending table metadata once per change, not per look.

pyiceberg's ``Transaction.table_metadata`` applies every staged update to the base metadata and deep
copies the result each time it is read, and one append reads it a dozen times. The copy grows with
the snapshots the table keeps, so it was over half the cost of a 500-row append on a table with a
few hundred snapshots. Metadata models are frozen, so the base serves until something is staged,
and then one result serves every reader until the staged updates or the base change.
"""

from __future__ import annotations

from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableUpdate, update_table_metadata


class LakeTransaction(Transaction):
    def __init__(self, table: Table) -> None:
        super().__init__(table, autocommit=False)
        self._derived: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None
        """The base and the staged updates the cached metadata was derived from, and the metadata."""

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        if not updates:  # nothing staged yet: the committed metadata as it is, frozen, uncopied
            return base
        derived = self._derived
        if derived is None or derived[0] is not base or derived[1] is not updates:
            derived = self._derived = (base, updates, update_table_metadata(base, updates))
        return derived[2]
