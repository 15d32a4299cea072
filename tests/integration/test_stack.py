"""The stack on the emulator: idempotent deploys, the data path, the Lambda, the DLQ, bad input."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime

import awswrangler as wr
import pytest

from deployments.localaws import LocalAws
from deployments.processes import free_port
from deployments.stack import delete, deploy
from storeops.aws import AwsClients
from storeops.exceptions import StackError
from storeops.settings import Settings
from tests.conftest import run_cli, wait_for
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration


def _physical_ids(clients: AwsClients, stack: str) -> dict[str, str]:
    resources = clients.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def test_deploying_twice_changes_nothing(local_stack: LocalStack) -> None:
    before = _physical_ids(local_stack.clients, local_stack.settings.stack_name)
    again = deploy(local_stack.settings, local_stack.clients)
    assert again.action == "unchanged"
    assert _physical_ids(local_stack.clients, local_stack.settings.stack_name) == before
    assert again.outputs["DataLakeBucket"] == local_stack.resources.data_lake_bucket


def test_a_firehose_record_is_readable_through_athena(local_stack: LocalStack) -> None:
    res = local_stack.resources
    reading = {
        "event_id": "e-1",
        "store_id": "S001",
        "product_id": "P001",
        "on_hand": 7,
        "observed_at": "2026-01-01T00:00:00.000Z",
        "schema_version": 3,
    }
    # the stream's contract: each record is a gzip member of newline-delimited readings
    record = gzip.compress((json.dumps(reading) + "\n").encode())
    response = local_stack.clients.client("firehose").put_record_batch(
        DeliveryStreamName=res.delivery_stream, Records=[{"Data": record}]
    )
    assert response["FailedPutCount"] == 0
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    def query() -> object:
        frame = wr.athena.read_sql_query(
            "select store_id, on_hand, dt from inventory_readings where dt = :dt",
            database=res.glue_database,
            workgroup=res.athena_workgroup,
            ctas_approach=False,
            params={"dt": today},
            paramstyle="named",
            boto3_session=local_stack.clients.session,
        )
        return frame.to_dict("records") if len(frame) else None

    records = wait_for(query, timeout=20, interval=0.2)
    assert records == [{"store_id": "S001", "on_hand": 7, "dt": today}]


def test_the_planning_lambda_can_be_invoked(local_stack: LocalStack) -> None:
    response = local_stack.clients.client("lambda").invoke(
        FunctionName=local_stack.resources.planning_function, Payload=json.dumps({"dry_run": True}).encode()
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response, response["Payload"].read()


def test_a_message_failing_more_than_max_receive_count_lands_in_the_dlq(local_stack: LocalStack) -> None:
    sqs = local_stack.clients.client("sqs")
    queue, dlq = local_stack.resources.dispatch_queue_url, local_stack.resources.dead_letter_queue_url
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]
    max_receives = int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
    sqs.send_message(QueueUrl=queue, MessageBody='{"poison": true}')
    receives = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and receives < max_receives + 2:
        got = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, WaitTimeSeconds=1).get("Messages", [])
        receives += len(got)  # received, never deleted: a failing consumer
        if not got:
            break
    assert receives == max_receives

    def in_dlq() -> object:
        return sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages")

    (message,) = wait_for(in_dlq, timeout=10)  # type: ignore[misc]
    assert message["Body"] == '{"poison": true}'


def test_stack_cli_outputs_json(local_stack: LocalStack) -> None:
    result = run_cli(["-m", "deployments.stack", "outputs", "--json"], env=local_stack.env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["outputs"]["DispatchQueueUrl"] == local_stack.resources.dispatch_queue_url


def test_a_stack_in_a_failed_state_is_reported_with_the_fix(local_stack: LocalStack) -> None:
    settings = local_stack.settings.model_copy(update={"stack_name": "broken"})
    cfn = local_stack.clients.client("cloudformation")
    bad = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": -5}}}}
    cfn.create_stack(StackName="broken", TemplateBody=json.dumps(bad), OnFailure="ROLLBACK")
    status = wait_for(
        lambda: (s := cfn.describe_stacks(StackName="broken")["Stacks"][0]["StackStatus"]).endswith("COMPLETE") and s
    )
    assert status == "ROLLBACK_COMPLETE"
    with pytest.raises(StackError) as info:
        deploy(settings, local_stack.clients)
    assert "ROLLBACK_COMPLETE" in info.value.one_line()
    assert "delete --yes" in info.value.one_line()
    result = run_cli(["-m", "deployments.stack", "deploy"], env={**local_stack.env, "STOREOPS_STACK_NAME": "broken"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    deleted = run_cli(
        ["-m", "deployments.stack", "delete", "--yes"],
        env={**local_stack.env, "STOREOPS_STACK_NAME": "broken"},
    )
    assert deleted.returncode == 0, deleted.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STOREOPS_TARGET": "azure"}, "STOREOPS_TARGET"),
        ({"STOREOPS_LOCAL_PORT": "0"}, "STOREOPS_LOCAL_PORT"),
    ],
)
def test_bad_settings_exit_2_with_one_line(env: dict[str, str], needle: str) -> None:
    result = run_cli(["-m", "deployments.stack", "outputs"], env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_endpoint_exits_2_with_one_line(tmp_path) -> None:
    env = {"STOREOPS_LOCAL_PORT": str(free_port()), "STOREOPS_LOCAL_HOME": str(tmp_path)}
    result = run_cli(["-m", "deployments.stack", "outputs"], env=env)
    assert result.returncode == 2
    assert "localaws start" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_aws_target_without_credentials_exits_2(tmp_path) -> None:
    env = {
        "STOREOPS_TARGET": "aws",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_CONFIG_FILE": str(tmp_path / "x"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "x"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = run_cli(["-m", "deployments.stack", "deploy"], env=env)
    assert result.returncode == 2
    assert "credentials" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_emulator_state_survives_a_restart(emulator: LocalAws, local_stack: LocalStack) -> None:
    s3 = local_stack.clients.client("s3")
    s3.put_object(Bucket=local_stack.resources.data_lake_bucket, Key="probe.txt", Body=b"kept")
    emulator.stop()
    emulator.start()
    body = s3.get_object(Bucket=local_stack.resources.data_lake_bucket, Key="probe.txt")["Body"].read()
    assert body == b"kept"


def _buckets(clients: AwsClients) -> set[str]:
    return {b["Name"] for b in clients.client("s3").list_buckets()["Buckets"]}


def test_the_lake_outlives_its_stack_and_delete_removes_it(local_stack: LocalStack) -> None:
    lake = local_stack.resources.data_lake_bucket
    s3 = local_stack.clients.client("s3")
    s3.put_object(Bucket=lake, Key="inventory/dt=2026-11-27/hour=10/late.json.gz", Body=b"x")
    cfn = local_stack.clients.client("cloudformation")
    cfn.delete_stack(StackName=local_stack.settings.stack_name)  # e.g. from the console
    wait_for(lambda: _stack_gone(local_stack), timeout=60)
    assert lake in _buckets(local_stack.clients)  # DeletionPolicy Retain: the data survives
    assert s3.list_objects_v2(Bucket=lake)["KeyCount"] == 1
    result = run_cli(["-m", "deployments.stack", "delete", "--yes", "--json"], env=local_stack.env)
    assert result.returncode == 0, result.stderr
    assert f"deleted data lake s3://{lake} (1 objects)" in result.stderr  # progress: stderr with --json
    assert "did not exist; the data lake it retained is deleted" in result.stdout
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert (payload["deleted"], payload["stack_existed"], payload["lake_objects_deleted"]) == (True, False, 1)
    assert not {b for b in _buckets(local_stack.clients) if b.startswith(local_stack.settings.stack_name + "-")}


def test_a_new_stack_uses_the_lake_an_earlier_one_left(local_stack: LocalStack) -> None:
    """Deleted from the console, deployed again: the retained lake is adopted with its data."""
    lake = local_stack.resources.data_lake_bucket
    s3 = local_stack.clients.client("s3")
    s3.put_object(Bucket=lake, Key="inventory/dt=2026-11-27/hour=10/history.json.gz", Body=b"x")
    local_stack.clients.client("cloudformation").delete_stack(StackName=local_stack.settings.stack_name)
    wait_for(lambda: _stack_gone(local_stack), timeout=60)

    result = run_cli(["-m", "deployments.stack", "deploy", "--json"], env=local_stack.env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"using the data lake s3://{lake} that an earlier stack" in result.stderr + result.stdout
    outputs = json.loads(result.stdout.strip().splitlines()[-1])["outputs"]
    assert outputs["DataLakeBucket"] == lake
    assert s3.list_objects_v2(Bucket=lake, Prefix="inventory/")["KeyCount"] == 1  # the data is still there
    again = deploy(local_stack.settings, local_stack.clients)  # an update keeps using it
    assert again.action == "unchanged"
    put = local_stack.clients.client("firehose").put_record_batch(
        DeliveryStreamName=local_stack.resources.delivery_stream, Records=[{"Data": b"{}"}]
    )
    assert put["FailedPutCount"] == 0
    wait_for(lambda: s3.list_objects_v2(Bucket=lake, Prefix="inventory/")["KeyCount"] == 2, timeout=30)


def _stack_gone(stack: LocalStack) -> bool:
    from storeops.aws import describe_stack

    found = describe_stack(stack.clients, stack.settings.stack_name)
    return found is None or found["StackStatus"] == "DELETE_COMPLETE"


def _cutoff(stack: LocalStack) -> int:
    group = stack.clients.client("athena").get_work_group(WorkGroup=stack.resources.athena_workgroup)
    return int(group["WorkGroup"]["Configuration"]["BytesScannedCutoffPerQuery"])


def test_a_parameter_set_once_is_kept_by_later_deploys(local_stack: LocalStack) -> None:
    assert _cutoff(local_stack) == 10737418240
    result = run_cli(
        ["-m", "deployments.stack", "deploy", "--parameter", "BytesScannedCutoffPerQuery=1000000000"],
        env=local_stack.env,
    )
    assert result.returncode == 0, result.stderr
    assert _cutoff(local_stack) == 1_000_000_000
    again = deploy(local_stack.settings, local_stack.clients)
    assert again.action == "unchanged"
    assert _cutoff(local_stack) == 1_000_000_000
    parameters = local_stack.clients.client("cloudformation").describe_stacks(
        StackName=local_stack.settings.stack_name
    )["Stacks"][0]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in parameters}["ScannedBytesSource"] == "s3-estimate"


@pytest.mark.parametrize(
    ("argument", "needle"),
    [
        ("BytesScannedCutof=5", "unknown stack parameter BytesScannedCutof"),
        ("LambdaCodeKey=x", "is set by the deployer"),
        ("novalue", "expected KEY=VALUE"),
    ],
)
def test_a_bad_parameter_is_a_usage_error(local_stack: LocalStack, argument: str, needle: str) -> None:
    result = run_cli(["-m", "deployments.stack", "deploy", "--parameter", argument], env=local_stack.env)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_flows_that_find_no_stack_at_once_deploy_it_once(emulator_settings: Settings) -> None:
    """store-data and plan-shortages both start at the first minute after `up` and both find no stack."""
    from concurrent.futures import ThreadPoolExecutor

    from deployments.environment import prepare

    settings = emulator_settings.model_copy(update={"stack_name": "raced"})
    clients = AwsClients.from_settings(settings)
    try:
        with ThreadPoolExecutor(3) as pool:
            environments = list(pool.map(lambda _: prepare(settings), range(3)))
        assert {env.resources.planning_function for env in environments} == {
            environments[0].resources.planning_function
        }
        assert not list((settings.local_home / "build").glob("*.tmp"))  # no staging file left behind
        stacks = clients.client("cloudformation").describe_stacks(StackName="raced")["Stacks"]
        assert stacks[0]["StackStatus"] == "CREATE_COMPLETE"
    finally:
        delete(settings, clients)
