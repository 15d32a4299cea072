"""`verify`'s multi-member gzip check is as strict as production: its object holds at least as many
gzip members as a Firehose object of the stores' readings can (issue 23, point 4)."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest
from cfnlint.decode import decode

from deployments.stack import TEMPLATE_PATH
from deployments.verify import (
    GZIP_MEMBERS,
    MAX_BUFFER_BYTES,
    MIN_FULL_RECORD_BYTES,
    READINGS,
    multi_member_object,
    verify_readings,
)
from storeops.contracts.reading import InventoryReading
from storeops.stores.catalog import build_catalog
from storeops.stores.encoding import ReadingEncoder
from storeops.stores.firehose import DEFAULT_RAW_CHUNK_BYTES, pack
from storeops.stores.readings import reading_columns
from storeops.stores.simulation import advance, initial_state

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def gzip_members(body: bytes) -> list[bytes]:
    """Each member of a concatenated gzip object, decompressed on its own."""
    members = []
    while body:
        member = zlib.decompressobj(wbits=31)
        members.append(member.decompress(body))
        assert member.eof, "a truncated gzip member"
        body = member.unused_data
    return members


def test_the_largest_buffer_is_the_templates_maximum() -> None:
    template, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    assert template is not None
    assert int(template["Parameters"]["FirehoseBufferMiB"]["MaxValue"]) * 1024 * 1024 == MAX_BUFFER_BYTES


@pytest.mark.parametrize(("stores", "products"), [(200, 200), (40, 1000)])
def test_a_full_record_of_the_stores_readings_is_at_least_the_assumed_size(stores: int, products: int) -> None:
    """Smaller records would mean more members per object than the check writes."""
    catalog = build_catalog(stores, products, 7)
    state = initial_state(catalog, AT)
    tick = advance(state, 1 / 60)
    batch = ReadingEncoder(catalog).encode(reading_columns(catalog, state, tick), AT)
    records = pack(batch)
    full = [len(r.data) for r in records if r.raw_bytes > DEFAULT_RAW_CHUNK_BYTES - 2048]
    assert len(full) >= 5
    assert min(full) >= MIN_FULL_RECORD_BYTES
    # so an object of the largest buffer holds at most GZIP_MEMBERS full records
    assert -(-MAX_BUFFER_BYTES // min(full)) <= GZIP_MEMBERS


def test_the_checks_object_has_one_member_per_reading_and_every_reading() -> None:
    readings = verify_readings("V000000001", AT, first_product=READINGS + 1, count=GZIP_MEMBERS)
    body = multi_member_object(readings, GZIP_MEMBERS)
    members = gzip_members(body)
    assert len(members) == GZIP_MEMBERS == 959
    lines = [line for member in members for line in member.decode().splitlines()]
    assert [json.loads(line)["event_id"] for line in lines] == [r["event_id"] for r in readings]
    assert len({r["product_id"] for r in readings}) == GZIP_MEMBERS
    InventoryReading.model_validate(readings[-1])  # product ids stay within the reading contract
