"""Run a query from ``sql/`` on Athena through awswrangler, and what a query costs.

Shared by the planner (the shortage queries) and the stores' landing check. Values are bound
as ``:name`` parameters; only validated identifiers are put into the SQL text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from botocore.exceptions import ClientError

from storeops.aws import AwsClients, StackResources
from storeops.aws_errors import describe_error
from storeops.exceptions import QueryFailed, StackError
from storeops.sql import load_query

QUERY_POLL_SECONDS = 0.25  # awswrangler polls GetQueryExecution every second by default
ATHENA_USD_PER_TB = 5.0
ATHENA_MIN_BYTES = 10 * 1024 * 1024  # Athena bills at least 10 MB per query

# Where a query's bytes-scanned figure comes from: Athena's own ``DataScannedInBytes``, or (on the
# emulator, which has no billing) the bytes of the S3 objects under the partitions it selected.
ScannedBytesSource = Literal["athena", "s3-estimate"]
SCANNED_BYTES_LABELS: dict[str, str] = {
    "athena": "bytes scanned",
    "s3-estimate": "bytes scanned (estimate: S3 objects under the selected partitions)",
}


def scan_cost_usd(bytes_scanned: Iterable[int]) -> float:
    """What Athena bills for these queries: $5 per TB scanned, at least 10 MB per query."""
    return sum(max(b, ATHENA_MIN_BYTES) for b in bytes_scanned) / 1e12 * ATHENA_USD_PER_TB


@dataclass(frozen=True)
class QueryTarget:
    """Where a query runs: the Glue database, the Athena workgroup, and the tables it names."""

    database: str
    workgroup: str
    tables: dict[str, str]  # identifier slot in the SQL -> table name


def inventory_query(resources: StackResources) -> QueryTarget:
    """Where queries over the inventory readings run (the landing check, the post-deploy check)."""
    return QueryTarget(
        database=resources.glue_database,
        workgroup=resources.athena_workgroup,
        tables={"inventory_table": resources.inventory_table},
    )


@dataclass
class QueryRun:
    frame: pd.DataFrame
    query_execution_id: str
    bytes_scanned: int
    seconds: float


@dataclass
class ChunkedQueryRun:
    """A finished query whose result is read in chunks of bounded size, as they are iterated."""

    chunks: Iterator[pd.DataFrame]
    query_execution_id: str
    bytes_scanned: int
    seconds: float  # until the result was ready (reading the chunks comes after)


def failed_query_id(clients: AwsClients, workgroup: str, sql: str) -> str | None:
    """awswrangler's QueryFailed carries no id: find our query among the workgroup's latest."""
    athena = clients.client("athena")
    try:
        ids = athena.list_query_executions(WorkGroup=workgroup, MaxResults=20).get("QueryExecutionIds", [])
        if not ids:
            return None
        executions = athena.batch_get_query_execution(QueryExecutionIds=ids)["QueryExecutions"]
    except ClientError:
        return None
    head = sql.strip()[:60]
    matches = [
        e for e in executions if e["Status"]["State"] == "FAILED" and e.get("Query", "").strip().startswith(head)
    ]
    if not matches:
        return None
    newest = max(matches, key=lambda e: e["Status"].get("SubmissionDateTime") or 0)
    return str(newest["QueryExecutionId"])


def _one_line(
    exc: Exception, name: str, target: QueryTarget, query_id: Callable[[], str | None]
) -> QueryFailed | StackError:
    """The one-line error for a query that failed (``query_id`` names it) or could not start."""
    if not isinstance(exc, ClientError):
        failed = query_id()
        reason = str(exc).splitlines()[0][:300] if str(exc) else "no reason given"
        return QueryFailed(
            f"Athena query {name} failed (query id {failed or 'unknown'}): {reason}",
            query_execution_id=failed,
            hint="check the Glue tables and the data under them; redeploy the stack if a table is missing",
        )
    message = describe_error(exc)
    if "WorkGroup" in message or "workgroup" in message:
        return StackError(
            f"Athena workgroup {target.workgroup} is not usable: {message}",
            hint="deploy the stack (`python -m deployments.stack deploy`)",
        )
    return QueryFailed(f"Athena query {name} could not start: {message}")


def run_query(clients: AwsClients, target: QueryTarget, name: str, params: dict[str, Any]) -> QueryRun:
    """Run ``sql/<name>.sql`` with bound parameters through awswrangler; one-line errors."""
    import awswrangler as wr

    sql = load_query(name, **target.tables)
    started = time.perf_counter()
    try:
        frame = wr.athena.read_sql_query(
            sql,
            database=target.database,
            workgroup=target.workgroup,
            ctas_approach=False,
            athena_query_wait_polling_delay=QUERY_POLL_SECONDS,
            params=params,
            paramstyle="named",
            boto3_session=clients.session,
        )
    except (wr.exceptions.QueryFailed, ClientError) as exc:
        raise _one_line(exc, name, target, lambda: failed_query_id(clients, target.workgroup, sql)) from None
    metadata = getattr(frame, "query_metadata", None) or {}
    statistics = metadata.get("Statistics", {})
    return QueryRun(
        frame=frame,
        query_execution_id=str(metadata.get("QueryExecutionId", "")),
        bytes_scanned=int(statistics.get("DataScannedInBytes", 0)),
        seconds=time.perf_counter() - started,
    )


def run_query_chunks(
    clients: AwsClients, target: QueryTarget, name: str, params: dict[str, Any], chunksize: int
) -> ChunkedQueryRun:
    """Run ``sql/<name>.sql`` like ``run_query`` (awswrangler, no CTAS) and read its CSV result in chunks
    of at most ``chunksize`` rows, so memory grows with a chunk, not with the result."""
    import awswrangler as wr

    sql = load_query(name, **target.tables)
    started = time.perf_counter()
    query_id = None
    try:
        query_id = str(
            wr.athena.start_query_execution(
                sql,
                database=target.database,
                workgroup=target.workgroup,
                params=params,
                paramstyle="named",
                boto3_session=clients.session,
            )
        )
        execution = wr.athena.wait_query(
            query_id, boto3_session=clients.session, athena_query_wait_polling_delay=QUERY_POLL_SECONDS
        )
        chunks = wr.athena.get_query_results(
            query_id, chunksize=chunksize, use_threads=False, boto3_session=clients.session
        )
    except (wr.exceptions.QueryFailed, ClientError) as exc:
        raise _one_line(exc, name, target, lambda: query_id) from None
    statistics = execution.get("Statistics", {})
    return ChunkedQueryRun(
        chunks=iter([chunks]) if isinstance(chunks, pd.DataFrame) else chunks,
        query_execution_id=query_id,
        bytes_scanned=int(statistics.get("DataScannedInBytes", 0)),
        seconds=time.perf_counter() - started,
    )
