"""How the plan flow reports a refused invocation (no network: botocore's Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from storeops.aws import AwsClients, botocore_config
from storeops.settings import load_settings
from tasks.planning import PlannerUnavailable, invoke_planner


class OneClient:
    def __init__(self, client: object) -> None:
        self._client = client

    def client(self, service: str, read_timeout: float | None = None) -> object:
        return self._client


def test_a_second_plan_while_one_runs_says_so() -> None:
    settings = load_settings(target="aws", region="eu-west-1")
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    lam = AwsClients(session, botocore_config(settings)).client("lambda")
    with Stubber(lam) as stub:
        stub.add_client_error(
            "invoke",
            service_error_code="TooManyRequestsException",
            service_message="Rate Exceeded.",
            http_status_code=429,
            modeled_fields={"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"},
        )
        with pytest.raises(PlannerUnavailable) as info:
            invoke_planner.fn(OneClient(lam), "storeops-planning", {"dry_run": True})  # type: ignore[arg-type]
    assert "another plan is running" in info.value.one_line()
    assert "one plan at a time" in info.value.one_line()
