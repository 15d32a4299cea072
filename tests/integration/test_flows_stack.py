"""The flows' ECS runtime (deployments/flows_template.yaml) deploys on the emulator beside the main stack,
through `python -m deployments.flows_stack`, and its outputs make a work pool template Prefect accepts.

The emulator's CloudFormation creates the ECS cluster and service, the ECR repository, the roles, the log
groups and the task state rule and queues; it runs no container (no container engine here), so the worker
service is created with its image but runs nothing, and no flow run starts.
"""

from __future__ import annotations

import json

from deployments.flows_stack import WORK_POOL, flows_stack_name
from storeops.aws import describe_stack, stack_outputs
from tests.conftest import run_cli
from tests.integration.conftest import LocalStack
from tests.unit.test_flows_template import validate_job_variables


def test_the_flows_stack_deploys_beside_the_main_stack_and_yields_a_valid_pool_template(
    local_stack: LocalStack,
) -> None:
    env = local_stack.env
    flows = flows_stack_name(local_stack.settings)
    first = run_cli(
        ["-m", "deployments.flows_stack", "deploy", "--prefect-api-url", "https://prefect.example/api", "--json"],
        env=env,
    )
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    created = json.loads(first.stdout.strip().splitlines()[-1])
    assert created["action"] == "created"
    assert "the default VPC" in created["network"]  # no --subnets: the default VPC, a public IP per task
    outputs = created["outputs"]
    assert outputs["WorkerImage"] == "none"  # no image pushed yet: the worker service runs no task
    assert outputs["AssignPublicIp"] == "ENABLED"
    assert outputs["WorkPoolName"] == WORK_POOL
    assert outputs["RepositoryUri"].endswith(f"/{flows}")

    # The task role names the main stack's resources, read from its outputs.
    parameters = {
        p["ParameterKey"]: p["ParameterValue"] for p in describe_stack(local_stack.clients, flows)["Parameters"]
    }
    assert parameters["DataLakeBucket"] == local_stack.resources.data_lake_bucket
    assert parameters["ClaimsTableName"] == local_stack.resources.claims_table
    assert local_stack.resources.dispatch_queue_url.endswith("/" + parameters["DispatchQueueName"])

    # An image lands in the repository (as `prefect deploy`'s push step would put it there); a second deploy
    # with the newest image starts the worker and keeps the Prefect API address and the network.
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    local_stack.clients.client("ecr").put_image(
        repositoryName=flows, imageManifest=json.dumps(manifest), imageTag="2026-12-01t10-00-00"
    )
    image = f"{outputs['RepositoryUri']}:2026-12-01t10-00-00"
    second = run_cli(["-m", "deployments.flows_stack", "deploy", "--image", "newest", "--json"], env=env)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    updated = json.loads(second.stdout.strip().splitlines()[-1])
    assert updated["action"] == "updated"
    assert updated["outputs"]["WorkerImage"] == image
    kept = {p["ParameterKey"]: p["ParameterValue"] for p in describe_stack(local_stack.clients, flows)["Parameters"]}
    assert kept["PrefectApiUrl"] == "https://prefect.example/api"
    assert kept["SubnetIds"] == parameters["SubnetIds"]
    service = local_stack.clients.client("ecs").describe_services(
        cluster=outputs["ClusterArn"], services=[updated["outputs"]["WorkerService"]]
    )["services"][0]
    assert service["desiredCount"] == 1
    assert service["launchType"] == "FARGATE"

    pool = run_cli(["-m", "deployments.flows_stack", "pool-template", "--json"], env=env)
    assert pool.returncode == 0, pool.stderr[-2000:]
    template = json.loads(pool.stdout.strip().splitlines()[-1])["base_job_template"]
    defaults = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    assert defaults["cluster"] == stack_outputs(local_stack.clients, flows)["ClusterArn"]
    assert defaults["task_role_arn"] == outputs["FlowTaskRoleArn"]
    assert defaults["cloudwatch_logs_options"]["awslogs-group"] == outputs["FlowRunLogGroup"]
    validate_job_variables(template, {})  # its defaults pass Prefect's own check

    deleted = run_cli(["-m", "deployments.flows_stack", "delete", "--yes", "--json"], env=env)
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    assert json.loads(deleted.stdout.strip().splitlines()[-1])["deleted"] is True
    assert describe_stack(local_stack.clients, flows) is None
    assert describe_stack(local_stack.clients, local_stack.settings.stack_name) is not None  # the main stack stays
