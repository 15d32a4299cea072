"""The one place that documents and fixes known bugs and gaps of the pinned emulator (ministack 1.5.33).

These fixes run inside the emulator process only (see ``deployments.emulator_server``);
production code uses awswrangler exactly as on AWS.

Bug 1, Athena result location: ``StartQueryExecution`` reports the result at
``<OutputLocation><id>.csv`` (no ``/`` when the location has no trailing slash, which is how
awswrangler passes it) but ``_save_query_results`` writes it to
``<reported location>/<id>.csv``. ``wr.athena.read_sql_query(ctas_approach=False)`` then
fails with ``NoFilesFound``. The fix reports ``<location>/<id>.csv`` and writes exactly there.

Gap 2, partition pruning: Athena with partition projection reads only the partitions a
query's predicates select; ministack copies every object under a table's location into a
temporary folder for each query, so query time grows with the lake's whole history (14 days
of hourly readings: every plan reads all 336 hours). The fix reads the query's ``WHERE``
conjuncts that use only partition columns (sqlglot, Trino dialect), evaluates them on each
object's ``key=value`` folders (DuckDB) and copies only the selected objects. A query it cannot
read is left as it was (every object). ``tests/integration/test_emulator.py`` checks both.

Gap 3, bytes scanned: ministack reports ``DataScannedInBytes`` as the length of the result
rows' text, unrelated to what the query read. Athena bills the bytes it reads from S3 (the
compressed size of a gzip JSON object, read whole). The fix counts the bytes of the objects the
query's tables were materialised from (the selected partitions) and reports that, before the
query shows ``SUCCEEDED``: an estimate of what Athena would bill, which the stack labels as such.

``tests/integration/test_emulator.py`` fails loudly when the pinned version changes, when the
buggy code is gone (the fix is no longer needed) or when it can no longer be installed.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any
from urllib.parse import urlparse

PINNED_MINISTACK = "1.5.33"
# The expression in ministack's _start_query_execution that builds the wrong location.
BUGGY_RESULT_LOCATION = 'f"{output_location}{query_id}.csv"'


class EmulatorFixOutdated(RuntimeError):
    """The emulator changed: a fix no longer applies or is no longer needed."""


def athena_result_location_bug_present() -> bool:
    """True while ministack's Athena still builds the result location the buggy way."""
    from ministack.services import athena

    source = inspect.getsource(athena._start_query_execution)
    return BUGGY_RESULT_LOCATION in source and hasattr(athena, "_save_query_results")


def install_athena_result_location_fix() -> None:
    """Wrap ministack's ``_save_query_results`` so the reported and written keys agree."""
    from ministack.services import athena

    installed = version("ministack")
    if installed != PINNED_MINISTACK:
        raise EmulatorFixOutdated(
            f"ministack {installed} is not the pinned {PINNED_MINISTACK}: re-check the fixes in "
            f"{__name__} and update the pin"
        )
    if not athena_result_location_bug_present():
        raise EmulatorFixOutdated("ministack's Athena result-location bug is gone: remove this fix")
    original: Callable[[str], Awaitable[Any]] = athena._save_query_results
    if getattr(original, "_storeops_fixed", False):
        return

    async def save_query_results_fixed(query_id: str) -> Any:
        execution = athena._executions.get(query_id)
        if not execution:
            return await original(query_id)
        reported: str = execution["ResultConfiguration"]["OutputLocation"]
        name = f"{query_id}.csv"
        folder = reported[: -len(name)].rstrip("/") if reported.endswith(name) else reported.rstrip("/")
        # The original writes <location>/<id>.csv: hand it the folder, then report the file.
        execution["ResultConfiguration"]["OutputLocation"] = folder
        try:
            return await original(query_id)
        finally:
            execution["ResultConfiguration"]["OutputLocation"] = f"{folder}/{name}"

    save_query_results_fixed._storeops_fixed = True  # type: ignore[attr-defined]
    athena._save_query_results = save_query_results_fixed


# The expression in ministack's _execute_query that makes its bytes-scanned figure up.
MADE_UP_SCANNED_BYTES = "len(str(row)) for row in results.get"
# bytes of the S3 objects the running query's tables were materialised from
_SCANNED: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("storeops_scanned", default=None)
# table location -> a DuckDB predicate over its partition columns, or None for every partition
_SELECTED: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "storeops_partitions", default=None
)
logger = logging.getLogger("storeops.emulator_fixes")


def partition_predicates(query: str, partition_keys: dict[str, set[str]]) -> dict[str, str | None]:
    """For each table (by name) the query reads, the partitions it selects, as a DuckDB predicate.

    ``partition_keys`` maps table names to their partition columns. A table read by several
    SELECTs selects the union; a SELECT without partition-only conjuncts selects everything (None).
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(query, read="trino")
    per_table: dict[str, list[str | None]] = {}
    for table in tree.find_all(exp.Table):
        keys = partition_keys.get(table.name)
        if not keys:
            continue
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        conjuncts = (
            list(where.this.flatten())
            if where is not None and isinstance(where.this, exp.And)
            else ([where.this] if where is not None else [])
        )
        mine = {"", table.alias_or_name, table.name}  # unqualified, or qualified by this table
        kept = [
            c.sql(dialect="duckdb")
            for c in conjuncts
            if (columns := list(c.find_all(exp.Column)))
            and all(col.name in keys and col.table in mine for col in columns)
            and c.find(exp.Subquery, exp.Select) is None
        ]
        per_table.setdefault(table.name, []).append(" AND ".join(f"({k})" for k in kept) if kept else None)
    return {
        name: None if any(p is None for p in predicates) else " OR ".join(f"({p})" for p in predicates if p)
        for name, predicates in per_table.items()
    }


def _partition_values(relative_key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in relative_key.split("/")[:-1] if "=" in part)


def _selected_keys(keys: list[str], prefix: str, predicate: str) -> list[str]:
    """The keys whose ``key=value`` folders satisfy ``predicate`` (keys without those folders stay)."""
    import duckdb

    values = {key: _partition_values(key[len(prefix) :]) for key in keys}
    columns = sorted({name for v in values.values() for name in v})
    tuples = sorted({tuple(v.get(c) for c in columns) for v in values.values() if set(v) == set(columns)})
    if not columns or not tuples:
        return keys
    connection = duckdb.connect(":memory:")
    try:
        # The emulator running the query's own predicate, as Athena would; values are bound.
        names = ", ".join(f'"{c}"' for c in columns)
        connection.execute(f"create table p ({', '.join(f'{n} varchar' for n in names.split(', '))})")
        connection.executemany(f"insert into p values ({', '.join('?' for _ in columns)})", tuples)  # noqa: S608
        chosen = {tuple(row) for row in connection.execute(f"select {names} from p where {predicate}").fetchall()}  # noqa: S608
    finally:
        connection.close()
    return [k for k in keys if set(values[k]) != set(columns) or tuple(values[k].get(c) for c in columns) in chosen]


def install_athena_partition_pruning() -> None:
    """Make ministack's Athena read only the partitions a query selects (as Athena's partition projection does)."""
    from ministack.services import athena

    original_rewrite: Callable[..., Awaitable[Any]] = athena._rewrite_data_paths
    if getattr(original_rewrite, "_storeops_fixed", False):
        return

    async def rewrite_data_paths(query: str, database: str, catalog: str | None = None) -> Any:
        token = _SELECTED.set(_selected_partitions(query, database))
        try:
            return await original_rewrite(query, database, catalog)
        finally:
            _SELECTED.reset(token)

    rewrite_data_paths._storeops_fixed = True  # type: ignore[attr-defined]
    athena._rewrite_data_paths = rewrite_data_paths
    athena._materialize_table_files = _materialize_table_files


def _selected_partitions(query: str, database: str) -> dict[str, str | None]:
    """Per table location, the predicate on its partition keys that ``query`` selects (None: every partition)."""
    from ministack.services import glue

    selected: dict[str, str | None] = {}
    try:
        tables = {
            name.split("/", 1)[1]: data
            for name, data in list(glue._tables.items())
            if name.split("/", 1)[0] == (database or "default")
        }
        keys = {t: {str(k.get("Name")) for k in d.get("PartitionKeys") or []} for t, d in tables.items()}
        for table, predicate in partition_predicates(query, keys).items():
            location = (tables[table].get("StorageDescriptor") or {}).get("Location")
            if location:
                selected[location] = predicate
    except Exception as exc:  # a query the pruning cannot read: every object, as before
        logger.warning("partition pruning skipped: %s", exc)
    return selected


def _table_keys(location: str) -> tuple[str, str, list[str]]:
    """The bucket, prefix and object keys under a table's location, only those of the selected partitions."""
    from ministack.services import athena
    from ministack.services import s3 as s3_service

    parsed = urlparse(location)
    bucket_name, prefix = parsed.netloc, parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    bucket = s3_service._buckets.get(bucket_name)
    if bucket is None:
        return bucket_name, prefix, []
    keys = sorted(
        k
        for k in list(bucket["objects"].keys())
        if k.startswith(prefix) and not k.endswith("/") and not athena._hidden(k[len(prefix) :])
    )
    selected = _SELECTED.get() or {}
    predicate = selected.get(location.rstrip("/") + "/") or selected.get(location)
    if predicate:
        keys = _selected_keys(keys, prefix, predicate)
    return bucket_name, prefix, keys


def _materialize_table_files(location: str, workdirs: list[str]) -> list[str]:
    """ministack's own, reading only the selected partitions' objects and counting their bytes (``_SCANNED``)."""
    from ministack.services import s3 as s3_service

    bucket_name, prefix, keys = _table_keys(location)
    if not keys:
        return []
    root = tempfile.mkdtemp(prefix="ministack-athena-")
    workdirs.append(root)
    files = []
    scanned = _SCANNED.get()
    for key in keys:
        data = s3_service._get_object_data(bucket_name, key)
        if data is None:
            continue
        if scanned is not None:
            scanned[0] += len(data)
        path = os.path.join(root, key[len(prefix) :])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        files.append(path)
    return files


def athena_scanned_bytes_made_up() -> bool:
    """True while ministack's Athena still reports the result rows' length as the bytes scanned."""
    from ministack.services import athena

    return MADE_UP_SCANNED_BYTES in inspect.getsource(athena._execute_query)


def install_athena_scanned_bytes() -> None:
    """Report the bytes of the objects a query read as its ``DataScannedInBytes`` (needs the pruning fix)."""
    from ministack.services import athena

    original_execute: Callable[..., Awaitable[Any]] = athena._execute_query
    if getattr(original_execute, "_storeops_fixed", False):
        return
    if not athena_scanned_bytes_made_up():
        raise EmulatorFixOutdated("ministack's Athena reports its own bytes scanned now: remove this fix")
    original_save: Callable[[str], Awaitable[Any]] = athena._save_query_results

    async def execute_query(query_id: str, *args: Any, **kwargs: Any) -> Any:
        token = _SCANNED.set([0])
        try:
            return await original_execute(query_id, *args, **kwargs)
        finally:
            _SCANNED.reset(token)

    async def save_query_results(query_id: str) -> Any:
        # Runs right after the original sets SUCCEEDED and its made-up figure, before it next
        # yields to the event loop: no client sees the made-up figure.
        execution = athena._executions.get(query_id)
        scanned = _SCANNED.get()
        if execution is not None and scanned is not None:
            execution["Statistics"]["DataScannedInBytes"] = scanned[0]
        return await original_save(query_id)

    execute_query._storeops_fixed = True  # type: ignore[attr-defined]
    athena._execute_query = execute_query
    athena._save_query_results = save_query_results


def install_all() -> None:
    """Install every fix; raises ``EmulatorFixOutdated`` if one no longer applies."""
    install_athena_result_location_fix()
    install_athena_partition_pruning()
    install_athena_scanned_bytes()
