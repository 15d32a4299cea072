"""Watching on the emulator: the metrics the flows put arrive where the stack's alarms look for them, and the
stack's alarms, topic, engine version, memory and reservation are deployed as the template says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storeops.aws import stack_outputs
from storeops.metrics import NAMESPACE, ROLLUP_LAG, STACK_DIMENSION, TRUCK_HEARTBEAT, Heartbeat, put_metric
from tests.conftest import wait_for
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration


def _alarm_dimensions(local_stack: LocalStack, name: str) -> dict[str, Any]:
    alarms = local_stack.clients.client("cloudwatch").describe_alarms(
        AlarmNames=[f"{local_stack.settings.stack_name}-{name}"]
    )["MetricAlarms"]
    (alarm,) = alarms
    return dict(alarm)


def _datapoints(local_stack: LocalStack, metric: str, statistic: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    response = local_stack.clients.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": STACK_DIMENSION, "Value": local_stack.settings.stack_name}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=[statistic],
    )
    return list(response["Datapoints"])


def test_the_heartbeat_and_the_rollup_lag_arrive_where_the_alarms_look(local_stack: LocalStack) -> None:
    heartbeat = Heartbeat(local_stack.clients, local_stack.settings.stack_name)
    assert heartbeat.beat()
    assert not heartbeat.beat()  # within the minute: nothing more is sent
    assert put_metric(local_stack.clients, local_stack.settings.stack_name, ROLLUP_LAG, 2)

    beats = wait_for(lambda: _datapoints(local_stack, TRUCK_HEARTBEAT, "SampleCount"))
    assert sum(p["SampleCount"] for p in beats) == 1  # type: ignore[attr-defined]
    lags = wait_for(lambda: _datapoints(local_stack, ROLLUP_LAG, "Maximum"))
    assert max(p["Maximum"] for p in lags) == 2.0  # type: ignore[attr-defined]

    # the alarms watch exactly these series: same namespace, metric and dimension
    for alarm_name, metric in (("truck-heartbeat", TRUCK_HEARTBEAT), ("rollup-lag", ROLLUP_LAG)):
        alarm = _alarm_dimensions(local_stack, alarm_name)
        assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, metric)
        assert alarm["Dimensions"] == [{"Name": STACK_DIMENSION, "Value": local_stack.settings.stack_name}]


def test_the_stack_deploys_its_alarms_and_topic_and_pins_what_it_should(local_stack: LocalStack) -> None:
    clients, stack = local_stack.clients, local_stack.settings.stack_name
    topic = stack_outputs(clients, stack)["AlarmTopicArn"]
    names = {a["AlarmName"]: a for a in clients.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    for suffix in (
        "dead-letters",
        "planner-errors",
        "planner-throttles",
        "rollup-lag",
        "truck-heartbeat",
    ):
        alarm = names[f"{stack}-{suffix}"]
        assert alarm["AlarmActions"] == [topic]
        assert alarm["OKActions"] == [topic]
    # the freshness alarm (metric math) and the budget are AWS-only (deployments.stack.template_for)
    assert f"{stack}-delivery-freshness" not in names
    # (the emulator's CloudFormation ignores a bucket's LifecycleConfiguration: tests/unit/test_template.py holds it)
    workgroup = clients.client("athena").get_work_group(WorkGroup=local_stack.resources.athena_workgroup)
    engine = workgroup["WorkGroup"]["Configuration"]["EngineVersion"]["SelectedEngineVersion"]
    assert engine == "Athena engine version 3"
    function = clients.client("lambda").get_function(FunctionName=local_stack.resources.planning_function)
    assert function["Configuration"]["MemorySize"] == 2048
    # the emulator reports 1,000 executions, all unreserved: the deployer reserves one plan at a time (its
    # CloudFormation does not apply a function's reservation, so the stack's parameter is what shows it)
    (stack_description,) = clients.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack_description["Parameters"]}
    assert parameters["PlanningReservedConcurrency"] == "1"
