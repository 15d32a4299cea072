"""Flow ``replay-dlq``: show what sits in the dead-letter queue and why, and move it back.

python -m flows.replay_dlq [--dry-run] [--limit N] [--json]
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.cli import FlowCli, Table
from flows.failures import fail_in_one_line
from flows.run_names import replay_dlq_run_name
from storeops.dispatch.replay import move_back, reasons, receive_all, release, remove_canaries
from storeops.parameters import DLQ_LIMIT, DeadLetterLimit, DryRun
from storeops.sqs import SqsBatcher
from tasks.artifacts import figure
from tasks.environment import load_environment


def reason_rows(by_reason: dict[str, int]) -> list[dict[str, Any]]:
    """The dead letters by reason, most first: the ``dead-letter-reasons`` artifact's rows and the CLI's."""
    return [
        {"reason": reason, "messages": figure(count)}
        for reason, count in sorted(by_reason.items(), key=lambda kv: -kv[1])
    ]


@flow(
    name="replay-dlq",
    description="Show the dead-letter queue by reason and move its messages back.",
    flow_run_name=replay_dlq_run_name,
)
@fail_in_one_line
def replay_dlq(dry_run: DryRun = False, limit: DeadLetterLimit = DLQ_LIMIT) -> dict[str, Any]:
    """Count the dead letters by reason; unless ``dry_run``, move them back to the dispatch queue."""
    env = load_environment()
    sqs = env.clients.client("sqs")
    res = env.resources
    received = receive_all(sqs, res.dead_letter_queue_url, limit=limit)
    letters = [letter for letter in received if not letter.canary]  # canaries: left by a crashed `stack verify`
    by_reason = reasons(letters)
    batcher = SqsBatcher(sqs)
    if dry_run:
        release(batcher, res.dead_letter_queue_url, received)
        moved, failed = 0, 0
    else:
        remove_canaries(batcher, res.dead_letter_queue_url, received)
        moved, failed = move_back(batcher, res.dispatch_queue_url, res.dead_letter_queue_url, letters)
    rows = reason_rows(dict(by_reason))
    outcome = (
        f"dry run: {len(letters):,} would be moved back"
        if dry_run
        else f"{moved:,} moved back to the dispatch queue, {failed:,} failed"
    )
    create_table_artifact(
        key="dead-letter-reasons",
        table=rows or [{"reason": "(empty)", "messages": "0"}],
        description=f"{len(letters):,} dead-lettered messages by reason; {outcome}",
    )
    get_run_logger().info("dead-letter queue: %d messages %s; %s", len(letters), dict(by_reason), outcome)
    return {
        "dead_letters": len(letters),
        "canaries_removed": len(received) - len(letters),
        "reasons": dict(by_reason),
        "moved": moved,
        "failed": failed,
        "dry_run": dry_run,
        "samples": [{"message_id": x.message_id, "reason": x.reason, "body": x.body[:200]} for x in letters[:20]],
    }


def _tables(result: dict[str, Any]) -> list[Table]:
    action = (
        f"dry run: {result['dead_letters']} would be moved back; left in place"
        if result["dry_run"]
        else f"moved back to the dispatch queue: {result['moved']}"
    )
    return [Table(f"dead-letter queue: {result['dead_letters']} messages; {action}", reason_rows(result["reasons"]))]


CLI = FlowCli(replay_dlq, "python -m flows.replay_dlq", _tables, exit_code=lambda result: 1 if result["failed"] else 0)

if __name__ == "__main__":
    from deployments.cli import run

    run(CLI)
