"""Flow ``replay-dlq``: show what sits in the dead-letter queue and why, and move it back.

python -m flows.replay_dlq [--dry-run] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from deployments.environment import prepare
from flows.console import quiet_expected_tracebacks
from flows.failures import fail_in_one_line
from flows.prefect_api import prefect_api
from flows.run_names import replay_dlq_run_name
from storeops.cli import emit_json, positive_int, run_cli
from storeops.dispatch.replay import move_back, reasons, receive_all, release, remove_canaries
from storeops.settings import load_settings
from storeops.sqs import SqsBatcher
from tasks.artifacts import figure


@flow(
    name="replay-dlq",
    description="Show the dead-letter queue by reason and move its messages back.",
    flow_run_name=replay_dlq_run_name,
)
@fail_in_one_line
def replay_dlq(dry_run: bool = False, limit: Annotated[int, Field(ge=1, le=100_000)] = 10_000) -> dict[str, Any]:
    """Count the dead letters by reason; unless ``dry_run``, move them back to the dispatch queue.

    Args:
        dry_run: Only show what is there and why; move nothing.
        limit: Look at this many dead letters at most (1 to 100,000).
    """
    env = prepare(load_settings())
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
    rows = [{"reason": reason, "messages": figure(count)} for reason, count in by_reason.most_common()]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.replay_dlq",
        description="Show what sits in the dead-letter queue and why; move it back to the dispatch queue.",
    )
    parser.add_argument("--dry-run", action="store_true", help="only show; leave the messages in the DLQ")
    parser.add_argument("--limit", type=positive_int, default=10_000, help="at most this many messages (10000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    settings = load_settings()
    quiet_expected_tracebacks()
    with prefect_api(settings.local_home):
        result = replay_dlq(dry_run=args.dry_run, limit=args.limit)
    print(f"dead-letter queue: {result['dead_letters']} messages")
    for reason, count in sorted(result["reasons"].items(), key=lambda kv: -kv[1]):
        print(f"  {count:>6}  {reason}")
    action = (
        f"dry run: {result['dead_letters']} would be moved back; left in place"
        if args.dry_run
        else f"moved back to the dispatch queue: {result['moved']}"
    )
    print(action)
    if args.json:
        emit_json(result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    run_cli(main)
