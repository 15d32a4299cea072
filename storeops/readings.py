"""The inventory reading (schema version 1): its model, vectorised validation, and NDJSON encoding.

``InventoryReading`` is the schema's definition (and documents it). The hot path never builds
one object per reading: ``validate_batch`` checks whole arrays, and ``ReadingEncoder`` writes
NDJSON into a per-catalog byte template whose variable fields sit in fixed-width holes
(numbers are right-aligned with spaces, which JSON allows), so a tick costs a buffer copy
plus a few numpy writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from storeops.catalog import Catalog

SCHEMA_VERSION = 1
MAX_UNITS = 999_999  # the encoder's number fields hold 6 digits
MAX_CASE_PACK = 1_000
ID_PATTERN = r"^[A-Z][0-9]{3,9}$"


class InventoryReading(BaseModel):
    """One store-product stock reading, as it lands in the lake (one JSON object per line)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    store_id: str = Field(pattern=ID_PATTERN)
    product_id: str = Field(pattern=ID_PATTERN)
    product_name: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=32)
    case_pack: int = Field(ge=1, le=MAX_CASE_PACK)
    on_hand: int = Field(ge=0, le=MAX_UNITS)
    reorder_point: int = Field(ge=0, le=MAX_UNITS)
    target_stock: int = Field(ge=1, le=MAX_UNITS)
    units_sold: int = Field(ge=0, le=MAX_UNITS)
    observed_at: AwareDatetime
    schema_version: Literal[1] = 1

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-11-26T23:00:00.123Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ValidationReport:
    """Which readings passed, and how many failed for which first reason."""

    valid: np.ndarray  # bool mask over the flattened (S*P) readings
    rejected: dict[str, int]

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


def validate_batch(
    on_hand: np.ndarray,
    units_sold: np.ndarray,
    reorder_point: np.ndarray,
    target_stock: np.ndarray,
    case_pack: np.ndarray,
    static_ok: np.ndarray | None = None,
) -> ValidationReport:
    """Check every reading of a tick at once (arrays of equal length); count the first failed rule."""
    rules: list[tuple[str, np.ndarray]] = []
    if static_ok is not None:
        rules.append(("invalid_store_or_product", ~static_ok))
    rules += [
        ("negative_on_hand", on_hand < 0),
        ("on_hand_too_large", on_hand > MAX_UNITS),
        ("negative_units_sold", units_sold < 0),
        ("units_sold_too_large", units_sold > MAX_UNITS),
        ("reorder_point_out_of_range", (reorder_point < 0) | (reorder_point > MAX_UNITS)),
        ("target_not_above_reorder_point", (target_stock <= reorder_point) | (target_stock > MAX_UNITS)),
        ("case_pack_out_of_range", (case_pack < 1) | (case_pack > MAX_CASE_PACK)),
    ]
    valid = np.ones(len(on_hand), dtype=bool)
    rejected: dict[str, int] = {}
    for reason, failed in rules:
        newly = failed & valid
        count = int(newly.sum())
        if count:
            rejected[reason] = count
            valid &= ~newly
    return ValidationReport(valid=valid, rejected=rejected)


def static_fields_valid(catalog: Catalog) -> np.ndarray:
    """Per flattened store-product: are the ids and names acceptable to the schema?"""
    import re

    pattern = re.compile(ID_PATTERN)
    stores_ok = np.array([bool(pattern.match(s)) for s in catalog.stores["store_id"]])
    products_ok = np.array(
        [
            bool(pattern.match(p)) and 0 < len(n) <= 64 and 0 < len(c) <= 32
            for p, n, c in zip(
                catalog.products["product_id"], catalog.products["name"], catalog.products["category"], strict=True
            )
        ]
    )
    return np.asarray((stores_ok[:, None] & products_ok[None, :]).ravel())


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


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Right-aligned ASCII digits, space-padded: an (n, width) uint8 array."""
    x = np.clip(values.astype(np.int32), 0, 10**width - 1)
    powers = (10 ** np.arange(width - 1, -1, -1)).astype(np.int32)
    digits = (x[:, None] // powers) % 10
    leading = x[:, None] < powers
    leading[:, -1] = False  # zero is written as "0"
    return np.where(leading, np.uint8(ord(" ")), (digits + ord("0")).astype(np.uint8))


@dataclass(frozen=True)
class EncodedBatch:
    """Newline-delimited readings in one buffer; ``line_ends[i]`` is the end offset of line i."""

    buffer: np.ndarray  # uint8
    line_ends: np.ndarray  # int64, exclusive, ascending

    @property
    def count(self) -> int:
        return len(self.line_ends)

    @property
    def nbytes(self) -> int:
        return int(self.line_ends[-1]) if len(self.line_ends) else 0

    def lines(self) -> list[bytes]:
        """Each reading's bytes (tests and small batches; the hot path slices the buffer)."""
        data = self.buffer.tobytes()
        starts = np.concatenate([[0], self.line_ends[:-1]])
        return [data[s:e] for s, e in zip(starts.tolist(), self.line_ends.tolist(), strict=True)]


class ReadingEncoder:
    """Encodes a tick of readings for one catalog and stock policy into NDJSON bytes."""

    ID_WIDTH = 36
    NUM_WIDTH = 6
    TS_WIDTH = 24

    def __init__(self, catalog: Catalog, reorder_point: np.ndarray, target_stock: np.ndarray) -> None:
        stores = catalog.stores["store_id"].tolist()
        products = catalog.products
        head = b'{"event_id":"'
        tail_parts = (b',"on_hand":', b',"units_sold":', b',"observed_at":"', b'","schema_version":1}\n')
        product_parts = [
            b',"product_id":' + json.dumps(pid).encode()
            + b',"product_name":' + json.dumps(name).encode()
            + b',"category":' + json.dumps(cat).encode()
            + b',"case_pack":' + str(int(pack)).encode()
            for pid, name, cat, pack in zip(
                products["product_id"], products["name"], products["category"], products["case_pack"], strict=True
            )
        ]  # fmt: skip
        store_parts = [b'","store_id":' + json.dumps(store).encode() for store in stores]
        policy = zip(reorder_point.ravel().tolist(), target_stock.ravel().tolist(), strict=True)
        # The static middle of each line: it closes the event_id string and ends before on_hand.
        statics = [
            store + product + b',"reorder_point":' + str(rp).encode() + b',"target_stock":' + str(ts).encode()
            for (store, product), (rp, ts) in zip(
                ((s, p) for s in store_parts for p in product_parts), policy, strict=True
            )
        ]
        id_hole = b" " * self.ID_WIDTH
        num_hole = b" " * self.NUM_WIDTH
        ts_hole = b" " * self.TS_WIDTH
        lines = [
            head + id_hole + s + tail_parts[0] + num_hole + tail_parts[1] + num_hole + tail_parts[2] + ts_hole
            + tail_parts[3]
            for s in statics
        ]  # fmt: skip
        lengths = np.fromiter((len(line) for line in lines), dtype=np.int64, count=len(lines))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        static_len = lengths - (
            len(head) + self.ID_WIDTH + 2 * self.NUM_WIDTH + self.TS_WIDTH + sum(len(p) for p in tail_parts)
        )
        self.template = np.frombuffer(b"".join(lines), dtype=np.uint8).copy()
        self.lengths = lengths
        self.id_at = starts + len(head)
        self.on_hand_at = self.id_at + self.ID_WIDTH + static_len + len(tail_parts[0])
        self.units_sold_at = self.on_hand_at + self.NUM_WIDTH + len(tail_parts[1])
        self.observed_at_at = self.units_sold_at + self.NUM_WIDTH + len(tail_parts[2])
        # Flat byte positions of every hole, computed once: a tick is then four scatter writes.
        self._id_index = (self.id_at[:, None] + np.arange(self.ID_WIDTH)).ravel()
        self._on_hand_index = (self.on_hand_at[:, None] + np.arange(self.NUM_WIDTH)).ravel()
        self._units_sold_index = (self.units_sold_at[:, None] + np.arange(self.NUM_WIDTH)).ravel()
        self._observed_at_index = (self.observed_at_at[:, None] + np.arange(self.TS_WIDTH)).ravel()

    @property
    def size(self) -> int:
        return len(self.lengths)

    def encode(
        self,
        on_hand: np.ndarray,
        units_sold: np.ndarray,
        observed_at: datetime,
        keep: np.ndarray | None = None,
        event_ids: np.ndarray | None = None,
    ) -> EncodedBatch:
        """NDJSON for every reading (flattened S*P order), keeping only ``keep`` if given."""
        n = self.size
        buffer = self.template.copy()
        ids = event_ids if event_ids is not None else random_event_ids(n)
        buffer[self._id_index] = ids.ravel()
        buffer[self._on_hand_index] = _digits(on_hand.ravel(), self.NUM_WIDTH).ravel()
        buffer[self._units_sold_index] = _digits(units_sold.ravel(), self.NUM_WIDTH).ravel()
        stamp = np.frombuffer(format_timestamp(observed_at).encode(), dtype=np.uint8)
        buffer[self._observed_at_index] = np.tile(stamp, n)
        if keep is None or bool(keep.all()):
            return EncodedBatch(buffer, np.cumsum(self.lengths))
        buffer = buffer[np.repeat(keep, self.lengths)]
        return EncodedBatch(buffer, np.cumsum(self.lengths[keep]))
