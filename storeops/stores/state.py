"""A simulated retailer's state between runs: one object per chunk of stores and a manifest, in the lake.

The state persists in the data-lake bucket under ``simulator/<S>x<P>-seed<N>/``: one object per
chunk (``chunk-<k>.npz``: its stock, clock and the truck stops it applied) and a small
``manifest.json`` (the layout, the latest reading, the window records every chunk has applied).
Every object is written with a conditional PUT, so a scheduled run continues where the previous
one stopped and two concurrent runs cannot silently overwrite each other. ``Simulation`` loads
the chunks one at a time, so memory grows with a chunk, not with the catalog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from storeops.aws_errors import is_conditional_conflict, is_not_found, is_precondition_failed
from storeops.exceptions import StoreOpsError
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.simulation import (
    CHUNK_PAIRS,
    ChunkLayout,
    DeliveryMemory,
    SimulationState,
    initial_state,
    stores_per_chunk,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SIMULATOR_PREFIX = "simulator/"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class SimulationConfig:
    """What identifies one simulated retailer; each has its own persisted state."""

    stores: int
    products: int
    seed: int = 7

    @property
    def prefix(self) -> str:
        """Where its state objects are."""
        return f"{SIMULATOR_PREFIX}{self.stores}x{self.products}-seed{self.seed}/"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}manifest.json"

    def chunk_key(self, index: int) -> str:
        return f"{self.prefix}chunk-{index:05d}.npz"


@dataclass
class SimulationManifest:
    """The simulation as a whole: its layout, how far its chunks got, and which window records every
    chunk has applied (``storeops.stores.deliveries.LedgerDeliveries`` skips those)."""

    stores: int
    products: int
    seed: int
    chunk_stores: int
    sim_clock: datetime | None = None  # the furthest any chunk's clock got
    ticks: int = 0  # the most readings any chunk took
    last_observed_at: datetime | None = None  # the latest reading of any chunk
    deliveries: DeliveryMemory = field(default_factory=lambda: DeliveryMemory())

    @classmethod
    def new(cls, catalog: Catalog, chunk_pairs: int = CHUNK_PAIRS) -> SimulationManifest:
        n_stores, n_products = catalog.shape
        return cls(n_stores, n_products, catalog.seed, min(n_stores, stores_per_chunk(n_products, chunk_pairs)))

    @property
    def layout(self) -> ChunkLayout:
        return ChunkLayout(self.stores, self.products, self.chunk_stores)

    def advanced(self, state: SimulationState) -> None:
        """A chunk was saved: the simulation got at least as far as it did."""
        self.ticks = max(self.ticks, state.ticks)
        self.sim_clock = max(self.sim_clock, state.sim_clock) if self.sim_clock else state.sim_clock
        if state.last_observed_at is not None:
            last = self.last_observed_at
            self.last_observed_at = max(last, state.last_observed_at) if last else state.last_observed_at

    def restart(self, start: datetime) -> None:
        """Every chunk starts again at ``start`` (a backfill)."""
        self.sim_clock, self.ticks, self.last_observed_at, self.deliveries = start, 0, None, DeliveryMemory()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "stores": self.stores,
                "products": self.products,
                "seed": self.seed,
                "chunk_stores": self.chunk_stores,
                "sim_clock": self.sim_clock.isoformat() if self.sim_clock else None,
                "ticks": self.ticks,
                "last_observed_at": self.last_observed_at.isoformat() if self.last_observed_at else None,
                "deliveries": self.deliveries.to_json(),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SimulationManifest:
        meta = json.loads(data)
        if meta.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"simulation manifest format {meta.get('format')} is not {MANIFEST_FORMAT}")
        clock, last = meta.get("sim_clock"), meta.get("last_observed_at")
        return cls(
            stores=int(meta["stores"]),
            products=int(meta["products"]),
            seed=int(meta["seed"]),
            chunk_stores=int(meta["chunk_stores"]),
            sim_clock=datetime.fromisoformat(clock) if clock else None,
            ticks=int(meta["ticks"]),
            last_observed_at=datetime.fromisoformat(last) if last else None,
            deliveries=DeliveryMemory.from_json(meta.get("deliveries") or {}),
        )


class ChunkBackend(Protocol):
    """Where a simulation's chunk states and manifest are kept between readings."""

    def load(self, index: int) -> SimulationState | None:
        """Chunk ``index`` as last saved, or None if it never was."""

    def save(self, state: SimulationState) -> None:
        """Keep a chunk's state (refused if someone else saved it since it was loaded)."""

    def replace(self, index: int) -> None:
        """The next save of chunk ``index`` replaces whatever is kept (without reading it)."""

    def save_manifest(self, manifest: SimulationManifest) -> None:
        """Keep the manifest (refused if someone else saved it since it was loaded)."""


class MemoryChunks:
    """Chunk states kept in this process (scenarios, tests, small catalogs): the same objects come back."""

    def __init__(self) -> None:
        self.states: dict[int, SimulationState] = {}

    def load(self, index: int) -> SimulationState | None:
        return self.states.get(index)

    def save(self, state: SimulationState) -> None:
        self.states[state.chunk] = state

    def replace(self, index: int) -> None:
        self.states.pop(index, None)

    def save_manifest(self, manifest: SimulationManifest) -> None:
        return None


class SimulationStore:
    """The simulation's state objects in the data lake; every write is conditional, so a concurrent
    writer is detected (``IfMatch`` the version read, or ``IfNoneMatch`` for a new object)."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        """An object's bytes and ETag, or (None, None) if there is none."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc):
                return None, None
            raise
        return response["Body"].read(), response.get("ETag")

    def head(self, key: str) -> str | None:
        """An object's ETag, or None if there is none."""
        try:
            return str(self.s3.head_object(Bucket=self.bucket, Key=key).get("ETag", ""))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def put(self, key: str, body: bytes, expected_etag: str | None) -> str:
        """Write ``key`` only if nobody else wrote it since ``expected_etag`` was read (None: only if new)."""
        try:
            if expected_etag:
                response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfMatch=expected_etag)
            else:
                response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if is_precondition_failed(exc) or is_conditional_conflict(exc):
                raise StoreOpsError(
                    f"another run changed the simulation state {key} during this run",
                    hint="run one store-data flow at a time per simulation (the deployment's concurrency limit is 1)",
                ) from None
            raise
        return str(response.get("ETag", ""))

    def open(self, config: SimulationConfig, now: datetime, chunk_pairs: int = CHUNK_PAIRS) -> Simulation:
        """The simulation to continue (its manifest; chunks load one at a time as a run reaches them),
        or a new one, in chunks of ``chunk_pairs`` store-products: a chunk never saved starts an hour
        before ``now`` (so its first reading reports an hour of sales). A saved simulation keeps the
        layout it was started with."""
        catalog = build_catalog(config.stores, config.products, config.seed)
        chunks = LakeChunks(self, config, catalog)
        manifest = chunks.load_manifest()
        if manifest is None:
            manifest = SimulationManifest.new(catalog, chunk_pairs)
        elif (manifest.stores, manifest.products, manifest.seed) != (config.stores, config.products, config.seed):
            raise StoreOpsError(
                f"the manifest {config.manifest_key} describes {manifest.stores} x {manifest.products} "
                f"(seed {manifest.seed}), expected {config.stores} x {config.products} (seed {config.seed})"
            )
        return Simulation(catalog, manifest, chunks, start=now - timedelta(hours=1), name=config.prefix)


class LakeChunks:
    """One simulation's objects in the lake, remembering the version of each it read or wrote."""

    def __init__(self, store: SimulationStore, config: SimulationConfig, catalog: Catalog) -> None:
        self.store = store
        self.config = config
        self.catalog = catalog
        self.etags: dict[str, str | None] = {}

    def load_manifest(self) -> SimulationManifest | None:
        key = self.config.manifest_key
        data, self.etags[key] = self.store.get(key)
        return SimulationManifest.from_bytes(data) if data is not None else None

    def save_manifest(self, manifest: SimulationManifest) -> None:
        key = self.config.manifest_key
        self.etags[key] = self.store.put(key, manifest.to_bytes(), self.etags.get(key))

    def load(self, index: int) -> SimulationState | None:
        key = self.config.chunk_key(index)
        data, self.etags[key] = self.store.get(key)
        return SimulationState.from_bytes(data, self.catalog) if data is not None else None

    def save(self, state: SimulationState) -> None:
        key = self.config.chunk_key(state.chunk)
        self.etags[key] = self.store.put(key, state.to_bytes(), self.etags.get(key))

    def replace(self, index: int) -> None:
        key = self.config.chunk_key(index)
        self.etags[key] = self.store.head(key)


@dataclass
class Simulation:
    """A simulated retailer: its catalog, its manifest, and its chunks' states (loaded one at a time)."""

    catalog: Catalog
    manifest: SimulationManifest
    chunks: ChunkBackend
    start: datetime  # where a chunk never saved starts
    name: str = "in memory"

    @classmethod
    def in_memory(cls, catalog: Catalog, start: datetime, chunk_pairs: int = CHUNK_PAIRS) -> Simulation:
        """A new simulation whose chunks stay in this process (it holds every store's state)."""
        return cls(catalog, SimulationManifest.new(catalog, chunk_pairs), MemoryChunks(), start.astimezone(UTC))

    @classmethod
    def of_state(cls, catalog: Catalog, state: SimulationState) -> Simulation:
        """The whole catalog as the one chunk ``state`` (made by ``initial_state(catalog, start)``)."""
        if state.shape != catalog.shape or state.first_store != 0 or state.chunk != 0:
            raise ValueError(f"a state of {state.shape} from store {state.first_store} is not the whole catalog")
        manifest = SimulationManifest(*catalog.shape, catalog.seed, catalog.shape[0])
        manifest.advanced(state)
        chunks = MemoryChunks()
        chunks.save(state)
        return cls(catalog, manifest, chunks, state.sim_clock)

    @property
    def layout(self) -> ChunkLayout:
        return self.manifest.layout

    def load(self, index: int) -> SimulationState:
        """Chunk ``index``: as saved, or new (starting at ``start``)."""
        first, stop = self.layout.bounds(index)
        state = self.chunks.load(index)
        if state is None:
            return initial_state(self.catalog, self.start, chunk=index, stores=(first, stop))
        if (state.chunk, state.first_store, state.stop_store) != (index, first, stop):
            raise StoreOpsError(
                f"the saved chunk {index} of {self.name} holds stores [{state.first_store}, {state.stop_store}), "
                f"its manifest says [{first}, {stop})"
            )
        return state

    def save(self, state: SimulationState) -> None:
        self.chunks.save(state)
        self.manifest.advanced(state)

    def save_manifest(self) -> None:
        self.chunks.save_manifest(self.manifest)

    def restart(self, start: datetime) -> None:
        """Start every chunk again at ``start`` (their saved states are replaced as they are saved)."""
        self.start = start.astimezone(UTC)
        self.manifest.restart(self.start)
