"""Readings as NDJSON bytes: a chunk of store-product rows at a time.

The static parts of each line (the store's and the product's fields) are formatted once per
store and once per product; a chunk of rows is then one ``%``-format per reading. Memory
grows with the chunk being encoded, not with the catalog. Columns cover a range of stores
(a chunk of the simulation, from ``first_store``) x every product, flattened store-major.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from storeops.clock import format_timestamp
from storeops.stores.catalog import Catalog

# One line: the event id, then the static store part, the product part (its price and promotion of the
# day included), then the numbers.
LINE_FORMAT = (
    b'{"event_id":"%s","store_id":%s%s,"on_hand":%d,"units_sold":%d,"units_expired":%d'
    b',"period_hours":%s,"observed_at":"%s","schema_version":3}\n'
)
# Columns: NUMERIC_FIELDS of storeops.contracts.reading as flat arrays over the readings, period_hours a
# number, price and on_promotion arrays over the products (chain-wide: the same in every store).
Columns = Mapping[str, Any]
DEFAULT_CHUNK_ROWS = 4096  # ~1.1 MiB of NDJSON: about one Firehose record


def random_event_ids(count: int) -> np.ndarray:
    """``count`` random UUID4 strings as a (count, 36) uint8 array of ASCII."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.frombuffer(raw.tobytes().hex().encode(), dtype=np.uint8).reshape(count, 32)
    dash = np.full((count, 1), ord("-"), dtype=np.uint8)
    return np.concatenate(
        [hexed[:, :8], dash, hexed[:, 8:12], dash, hexed[:, 12:16], dash, hexed[:, 16:20], dash, hexed[:, 20:]],
        axis=1,
    )


@dataclass(frozen=True)
class EncodedBatch:
    """Newline-delimited readings in one buffer; ``line_ends[i]`` is the end offset of line i."""

    data: bytes
    line_ends: np.ndarray  # int64, exclusive, ascending

    @property
    def buffer(self) -> np.ndarray:
        """The bytes as a read-only uint8 array (no copy)."""
        return np.frombuffer(self.data, dtype=np.uint8)

    @property
    def count(self) -> int:
        return len(self.line_ends)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def lines(self) -> list[bytes]:
        """Each reading's bytes."""
        return self.data.splitlines(keepends=True)

    @classmethod
    def of(cls, data: bytes) -> EncodedBatch:
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")).astype(np.int64) + 1
        return cls(data, ends)


class ReadingEncoder:
    """Encodes readings for one catalog (rows in flattened store-major order, from ``first_store``)."""

    def __init__(self, catalog: Catalog) -> None:
        products = catalog.products
        self.store_parts = [json.dumps(store_id).encode() for store_id in catalog.stores["store_id"]]
        self.product_static = [
            b',"product_id":%s,"product_name":%s,"category":%s,"case_pack":%d'
            % (json.dumps(pid).encode(), json.dumps(name).encode(), json.dumps(cat).encode(), int(pack))
            for pid, name, cat, pack in zip(
                products["product_id"], products["name"], products["category"], products["case_pack"], strict=True
            )
        ]
        self.n_products = len(self.product_static)
        self._priced: tuple[bytes, list[bytes]] | None = None

    def product_parts(self, columns: Columns) -> list[bytes]:
        """Each product's part of a line with its price and promotion flag (formatted once per price list)."""
        price = np.asarray(columns["price"], dtype=np.float64)
        promo = np.asarray(columns["on_promotion"], dtype=bool)
        key = price.tobytes() + promo.tobytes()
        if self._priced is None or self._priced[0] != key:
            parts = [
                static + b',"price":%.2f,"on_promotion":%s' % (p, b"true" if on else b"false")
                for static, p, on in zip(self.product_static, price.tolist(), promo.tolist(), strict=True)
            ]
            self._priced = (key, parts)
        return self._priced[1]

    @property
    def size(self) -> int:
        return len(self.store_parts) * self.n_products

    @staticmethod
    def rows_of(columns: Columns) -> int:
        """How many readings ``columns`` hold."""
        return int(np.size(columns["on_hand"]))

    def encode_rows(
        self,
        rows: np.ndarray,
        columns: Columns,
        observed_at: datetime,
        event_ids: np.ndarray | None = None,
        first_store: int = 0,
    ) -> EncodedBatch:
        """NDJSON for the flattened ``rows`` of ``columns`` (stores ``first_store`` on x every product)."""
        if len(rows) == 0:
            return EncodedBatch(b"", np.zeros(0, dtype=np.int64))
        ids = event_ids if event_ids is not None else random_event_ids(len(rows))
        tail = (b"%r" % float(columns["period_hours"]), format_timestamp(observed_at).encode())
        stores, products = np.divmod(rows, self.n_products)
        if first_store:
            stores += first_store
        store_parts, product_parts = self.store_parts, self.product_parts(columns)
        fields = zip(
            np.ascontiguousarray(ids).view("S36").ravel().tolist(),
            [store_parts[s] for s in stores.tolist()],
            [product_parts[p] for p in products.tolist()],
            *(np.asarray(columns[name])[rows].tolist() for name in ENCODED_NUMBERS),
            strict=True,
        )
        data = b"".join([LINE_FORMAT % (*f, *tail) for f in fields])
        return EncodedBatch.of(data)

    def chunks(
        self,
        columns: Columns,
        observed_at: datetime,
        keep: np.ndarray | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        first_store: int = 0,
        event_ids: np.ndarray | None = None,
    ) -> Iterator[EncodedBatch]:
        """The readings (all, or those in ``keep``) as consecutive batches of at most ``chunk_rows`` lines;
        ``event_ids`` (one per reading, ``random_event_ids``) when the caller keeps them, else new ones."""
        size = self.rows_of(columns)
        for start in range(0, size, chunk_rows):
            rows = np.arange(start, min(start + chunk_rows, size))
            if keep is not None:
                rows = rows[keep[rows]]
            if len(rows):
                ids = event_ids[rows] if event_ids is not None else None
                yield self.encode_rows(rows, columns, observed_at, ids, first_store=first_store)

    def encode(
        self,
        columns: Columns,
        observed_at: datetime,
        keep: np.ndarray | None = None,
        event_ids: np.ndarray | None = None,
        first_store: int = 0,
    ) -> EncodedBatch:
        """Every reading (or those in ``keep``) in one batch: small catalogs and chunks, tests."""
        rows = np.arange(self.rows_of(columns)) if keep is None else np.flatnonzero(keep)
        return self.encode_rows(rows, columns, observed_at, event_ids, first_store)


ENCODED_NUMBERS = ("on_hand", "units_sold", "units_expired")  # LINE_FORMAT's order
