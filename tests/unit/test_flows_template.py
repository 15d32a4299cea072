"""The flows' ECS runtime without a container engine or AWS: the template (cfn-lint, least privilege, the
task role against the calls in the code), prefect.yaml's two sets of deployments against Prefect's own
models and prefect-aws's ECS job schema, the work pool template, and the Dockerfile's install."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import cfnlint
import pytest
import yaml
from botocore import xform_name
from cfnlint.decode import decode

from deployments.flows_stack import (
    FLOWS_TEMPLATE_PATH,
    MAIN_STACK_OUTPUTS,
    QUEUE_OUTPUTS,
    SECRET_JOB_VARIABLES,
    TEMPLATE_BODY_MAX_BYTES,
    WORK_POOL,
    flows_stack_parameters,
    main_stack_parameters,
    pool_template,
)
from deployments.prefect_setup import WORK_POOL as PROCESS_POOL
from deployments.prefect_setup import pool_deployments
from deployments.stack import TEMPLATE_PATH
from storeops.metrics import NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
ECS_SET = {"plan-shortages", "rollup-hourly", "forecast-daily", "truck-dispatch", "replay-dlq"}
PROCESS_SET = ECS_SET | {"store-data", "scenario"}
# Fargate sizes (CPU units, MiB) of every ECS flow run, as README "Flows on ECS" prices them.
ECS_RUN_SIZE = {"cpu": 512, "memory": 1024}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(FLOWS_TEMPLATE_PATH))
    assert not errors
    return parsed


@cache
def prefect_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "prefect.yaml").read_text()))


def deployments_on(pool: str) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in prefect_yaml()["deployments"] if d["work_pool"]["name"] == pool}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The role's statements, with conditional ones (Fn::If) as their `true` branch."""
    found = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            found.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    return found


def actions_of(template: dict[str, Any], role: str) -> set[str]:
    return {action for s in statements(template, role) for action in _list(s["Action"])}


# ---------------------------------------------------------------- the template


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(FLOWS_TEMPLATE_PATH)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_fits_a_requests_template_body() -> None:
    assert len(FLOWS_TEMPLATE_PATH.read_bytes()) < TEMPLATE_BODY_MAX_BYTES  # flows_stack sends it inline


def test_the_partition_comes_from_the_stack() -> None:
    for path in (FLOWS_TEMPLATE_PATH, ROOT / "deployments" / "flows_stack.py", ROOT / "prefect.yaml"):
        assert "arn:aws:" not in path.read_text(), path


@cache
def iam_actions() -> dict[str, dict[str, Any]]:
    """Every IAM action and the resource types it supports, from cfn-lint's copy of AWS's reference."""
    data = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())
    return {f"{prefix}:{name}": spec for prefix, service in data.items() for name, spec in service["Actions"].items()}


# Actions granted on "*": each has no resource-level permissions (AWS's reference, checked below).
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "cloudwatch:PutMetricData",  # scoped by its cloudwatch:namespace condition instead
}


def test_every_action_exists_and_only_those_without_resource_level_permissions_take_any_resource(
    template: dict[str, Any],
) -> None:
    for role in ("ExecutionRole", "FlowTaskRole", "WorkerTaskRole"):
        for statement in statements(template, role):
            assert statement["Effect"] == "Allow"
            for action in _list(statement["Action"]):
                assert "*" not in action, (role, action)
                assert action.lower() in iam_actions(), f"{role}: {action} is not an IAM action"
                if "*" in _list(statement["Resource"]):
                    assert action in STAR_RESOURCE_ACTIONS, (role, action)
    for action in STAR_RESOURCE_ACTIONS - {"cloudwatch:PutMetricData"}:
        assert not iam_actions()[action.lower()].get("Resources"), f"{action} supports resources: name them"


def test_metrics_only_in_the_storeops_namespace(template: dict[str, Any]) -> None:
    (statement,) = [s for s in statements(template, "FlowTaskRole") if "cloudwatch:PutMetricData" in _list(s["Action"])]
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}


def test_the_execution_role_reads_only_the_prefect_secret_and_pulls_only_this_repository(
    template: dict[str, Any],
) -> None:
    found = {a: s for s in statements(template, "ExecutionRole") for a in _list(s["Action"])}
    assert found["secretsmanager:GetSecretValue"]["Resource"] == {"Ref": "PrefectApiSecretArn"}
    assert found["ecr:BatchGetImage"]["Resource"] == {"Fn::GetAtt": ["Repository", "Arn"]}
    assert set(found) == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
    }
    # The secret is conditional: no secret, no statement.
    (policy,) = template["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    conditional = [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert [s["Fn::If"][0] for s in conditional] == ["HasPrefectApiSecret"]


def test_the_worker_passes_only_the_flow_roles_and_runs_tasks_only_in_this_cluster(template: dict[str, Any]) -> None:
    found = {a: s for s in statements(template, "WorkerTaskRole") for a in _list(s["Action"])}
    assert found["iam:PassRole"]["Resource"] == [
        {"Fn::GetAtt": ["FlowTaskRole", "Arn"]},
        {"Fn::GetAtt": ["ExecutionRole", "Arn"]},
    ]
    assert found["iam:PassRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert found["ecs:RunTask"]["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}}
    # prefect-aws names a deployment's task definition family prefect_<pool>_<deployment id>
    assert found["ecs:RunTask"]["Resource"]["Fn::Sub"].endswith("task-definition/prefect_${WorkPoolName}_*")
    assert found["ecs:RegisterTaskDefinition"]["Resource"] == found["ecs:RunTask"]["Resource"]
    assert found["ecs:TagResource"]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    assert template["Parameters"]["WorkPoolName"]["Default"] == WORK_POOL


def test_the_repository_the_cluster_and_the_logs(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    repository = resources["Repository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["EncryptionConfiguration"] == {"EncryptionType": "KMS"}
    assert {"Name": "containerInsights", "Value": "enabled"} in resources["Cluster"]["Properties"]["ClusterSettings"]
    for name in ("WorkerLogGroup", "FlowRunLogGroup"):
        assert resources[name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    group = resources["TaskSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group  # outbound only
    service = resources["WorkerService"]["Properties"]
    assert service["LaunchType"] == "FARGATE"
    assert service["DesiredCount"] == {"Fn::If": ["HasWorkerImage", 1, 0]}
    worker = resources["WorkerTaskDefinition"]["Properties"]
    assert (worker["Cpu"], worker["Memory"]) == ("256", "512")  # README "Flows on ECS": 0.25 vCPU, 0.5 GB
    (container,) = worker["ContainerDefinitions"]
    assert container["Command"][:5] == ["prefect", "worker", "start", "--type", "ecs"]
    assert container["Secrets"]["Fn::If"][1] == [
        {"Name": {"Ref": "PrefectApiSecretVariable"}, "ValueFrom": {"Ref": "PrefectApiSecretArn"}}
    ]
    assert worker["TaskRoleArn"] != worker["ExecutionRoleArn"]


def test_every_checkov_skip_says_why(template: dict[str, Any]) -> None:
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), name
            assert len(skip["comment"]) > 30, f"{name} {skip['id']}: say why"
            assert "\n" not in skip["comment"], f"{name} {skip['id']}: in one line"


def test_the_main_stack_outputs_the_deploy_helper_reads_exist() -> None:
    main, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    for output in [*MAIN_STACK_OUTPUTS.values(), *QUEUE_OUTPUTS.values()]:
        assert output in main["Outputs"], output
    outputs = {o: f"value-of-{o}" for o in MAIN_STACK_OUTPUTS.values()}
    outputs |= {o: f"https://sqs.eu-west-1.amazonaws.com/123456789012/storeops-{o}" for o in QUEUE_OUTPUTS.values()}
    parameters = main_stack_parameters("storeops", outputs)
    assert parameters["DispatchQueueName"] == "storeops-DispatchQueueUrl"
    flows, errors = decode(str(FLOWS_TEMPLATE_PATH))
    assert set(parameters) <= set(flows["Parameters"])


def test_a_redeploy_sends_each_parameter_once_and_keeps_what_it_is_not_given() -> None:
    managed = {"StoreopsStackName": "storeops", "DataLakeBucket": "lake"}
    declared = {*managed, "PrefectApiUrl", "WorkerImage", "SubnetIds"}
    sent = flows_stack_parameters(managed, {"WorkerImage": "repo:tag"}, declared, previous=declared)
    keys = [p["ParameterKey"] for p in sent]
    assert sorted(keys) == sorted(declared)  # each once
    assert {p["ParameterKey"] for p in sent if p.get("UsePreviousValue")} == {"PrefectApiUrl", "SubnetIds"}
    assert {p["ParameterKey"]: p.get("ParameterValue") for p in sent}["WorkerImage"] == "repo:tag"


def test_the_image_step_refuses_the_local_target(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.flows_stack import image_repository
    from storeops.exceptions import ConfigurationError

    monkeypatch.setenv("STOREOPS_TARGET", "local")
    with pytest.raises(ConfigurationError, match="STOREOPS_TARGET=aws"):
        image_repository()


# ---------------------------------------------------------------- the task role against the code

# Modules never to scan for the flows' calls: another identity runs them (the Lambda's role, the deployer).
OTHER_IDENTITIES = ("deployments",)
# awswrangler functions the code calls, and the calls they make (awswrangler/athena/_read.py, _utils.py,
# _executions.py): the workgroup's configuration, the query, its state, the result's column types
# (GetQueryResults with MaxResults=1), and the result's CSV from S3.
WRANGLER_CALLS = {
    "read_sql_query": {"athena:GetWorkGroup", "athena:StartQueryExecution", "athena:GetQueryExecution",
                       "athena:GetQueryResults", "s3:GetObject"},
    "start_query_execution": {"athena:GetWorkGroup", "athena:StartQueryExecution"},
    "wait_query": {"athena:GetQueryExecution"},
    "get_query_results": {"athena:GetQueryExecution", "athena:GetQueryResults", "s3:GetObject"},
}  # fmt: skip
# A query Athena runs reads the catalog and the tables' objects, and writes its result, with the caller's
# rights (AWS's Athena guide, "Access to Glue Data Catalog" and "Access to Amazon S3").
ATHENA_ON_BEHALF = {
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartitions",
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
}
# boto3 operations whose IAM action is not the operation's own name.
IAM_ACTION_OF = {
    "s3:HeadObject": {"s3:GetObject"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
    "s3:DeleteObjects": {"s3:DeleteObject"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "lambda:Invoke": {"lambda:InvokeFunction"},
}
# TransactWriteItems is authorized per item: PutItem for Put, UpdateItem for Update, ...
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def _module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def modules_run_by(entrypoints: list[str]) -> dict[str, ast.Module]:
    """The project modules the flows import, from their entrypoints (every import, lazy ones included),
    without those another identity runs (OTHER_IDENTITIES)."""
    packages = {"flows", "tasks", "storeops"}
    found: dict[str, ast.Module] = {}
    todo = [entrypoint.split(":")[0].removesuffix(".py").replace("/", ".") for entrypoint in entrypoints]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in found or path is None or module.split(".")[0] not in packages:
            continue
        tree = found[module] = ast.parse(path.read_text())
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return found


def calls_in(modules: dict[str, ast.Module]) -> set[str]:
    """The AWS calls the modules make, as ``service:Operation``: boto3 client methods (``s3.put_object(...)``),
    operations named as strings (``_run("send_message_batch", ...)``, paginators), of the services the code
    asks the client factory for (``clients.client("sqs")``), and awswrangler's functions (WRANGLER_CALLS)."""
    services = {
        node.args[0].value
        for tree in modules.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service in services:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            # the client's name is the IAM prefix for these services (cloudwatch's endpoint is "monitoring")
            operations.setdefault(xform_name(operation), set()).add(f"{service}:{operation}")
    calls: set[str] = set()
    for tree in modules.values():
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "athena":
                    calls |= WRANGLER_CALLS.get(name, set())  # wr.athena.<function>
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "_" in node.value:
                name = node.value
            for call in operations.get(name or "", set()):
                calls.add(call)
    assert all(len(operations.get(xform_name(c.split(":")[1]), ())) == 1 for c in calls), "ambiguous operation"
    return calls


def transaction_item_kinds(modules: dict[str, ast.Module]) -> set[str]:
    """The kinds of item (``{"Put": ...}``) the modules that call TransactWriteItems build."""
    kinds = set()
    for tree in modules.values():
        source = ast.unparse(tree)
        if "transact_write_items" in source:
            kinds |= {
                key.value
                for node in ast.walk(tree)
                if isinstance(node, ast.Dict)
                for key in node.keys
                if isinstance(key, ast.Constant) and key.value in TRANSACTION_ITEM_ACTIONS
            }
    return kinds


def iam_actions_for(calls: set[str], modules: dict[str, ast.Module]) -> set[str]:
    actions: set[str] = set()
    for call in calls:
        if call == "dynamodb:TransactWriteItems":
            actions |= {TRANSACTION_ITEM_ACTIONS[kind] for kind in transaction_item_kinds(modules)}
        else:
            actions |= IAM_ACTION_OF.get(call, {call})
    if "athena:StartQueryExecution" in actions:
        actions |= ATHENA_ON_BEHALF
    return actions


def test_the_scan_sees_the_calls_it_must() -> None:
    """The scan itself: the calls of a few known places are found, the Lambda's and the deployer's are not."""
    modules = modules_run_by([d["entrypoint"] for d in deployments_on(WORK_POOL).values()])
    assert "storeops.planning.service" not in modules  # the planning Lambda's code: its own role
    assert not any(m.startswith("deployments") for m in modules)
    assert "flows.generate" not in modules  # process pool only
    assert "flows.scenario" not in modules
    calls = calls_in(modules)
    assert {"sqs:SendMessageBatch", "s3:ListObjectsV2", "lambda:Invoke", "cloudformation:DescribeStacks"} <= calls
    assert {"dynamodb:TransactWriteItems", "cloudwatch:PutMetricData", "athena:StartQueryExecution"} <= calls
    assert transaction_item_kinds(modules) == {"Put"}


def test_the_flows_role_grants_exactly_the_calls_the_ecs_flows_make(template: dict[str, Any]) -> None:
    modules = modules_run_by([d["entrypoint"] for d in deployments_on(WORK_POOL).values()])
    needed = iam_actions_for(calls_in(modules), modules)
    granted = actions_of(template, "FlowTaskRole")
    assert granted - needed == set(), "granted, but no flow calls it"
    assert needed - granted == set(), "called by a flow, but not granted"


# ---------------------------------------------------------------- prefect.yaml


def test_prefect_yaml_parses_with_prefects_own_deployment_models() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel  # what `prefect deploy` validates the file with

    model = PrefectYamlModel.model_validate(prefect_yaml())
    assert len(model.deployments) == len(PROCESS_SET) + len(ECS_SET)


def test_the_process_set_is_as_before_and_is_what_prefect_local_deploys() -> None:
    process = deployments_on(PROCESS_POOL)
    assert set(process) == PROCESS_SET
    assert [d["name"] for d in pool_deployments()] == list(process)
    for deployment in process.values():
        assert "build" not in deployment  # no image
        assert "pull" not in deployment  # the top-level one: {{ $PWD }}
        assert set(deployment["work_pool"]["job_variables"]) == {"env"}
    assert prefect_yaml()["build"] is None
    assert prefect_yaml()["push"] is None


def test_the_ecs_set_is_the_process_deployments_with_an_image_a_size_and_the_aws_settings() -> None:
    process, ecs = deployments_on(PROCESS_POOL), deployments_on(WORK_POOL)
    assert set(ecs) == {f"{name}-ecs" for name in ECS_SET}
    for name in ECS_SET:
        ours, theirs = ecs[f"{name}-ecs"], process[name]
        shared = set(theirs) - {"name", "work_pool"}
        assert {k: ours[k] for k in shared} == {k: theirs[k] for k in shared}, name  # schedules, triggers, ...
        variables = ours["work_pool"]["job_variables"]
        assert {k: variables[k] for k in ECS_RUN_SIZE} == ECS_RUN_SIZE
        assert variables["image"] == "{{ build-image.image }}"
        assert variables["env"] == {
            **theirs["work_pool"]["job_variables"]["env"],
            "STOREOPS_TARGET": "aws",
            "STOREOPS_REGION": "{{ flows-stack.region }}",
            "STOREOPS_STACK_NAME": "{{ flows-stack.stack_name }}",
        }
        workdir = {"directory": dockerfile_workdir()}
        assert ours["pull"] == [{"prefect.deployments.steps.set_working_directory": workdir}]


def _resolved(deployment: dict[str, Any]) -> dict[str, Any]:
    """The deployment's job variables as `prefect deploy` fills them from its build steps' outputs."""
    from prefect.utilities.templating import apply_values

    outputs = {
        "flows-stack": {"region": "eu-west-1", "stack_name": "storeops"},
        "build-image": {"image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/storeops-flows:2026-12-01t10-00-00"},
    }
    resolved = apply_values(deployment["work_pool"]["job_variables"], outputs)
    assert "{{" not in json.dumps(resolved)
    return dict(resolved)


def validate_job_variables(base_job_template: dict[str, Any], job_variables: dict[str, Any]) -> Any:
    """Check job variables as Prefect does: the server's schema check (with the pool's defaults, every
    required variable present, as for a flow run), then prefect-aws's ECS job configuration model, which
    the worker builds for each run; that configuration."""
    from prefect.utilities.schema_tools.validation import validate
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration

    schema = base_job_template["variables"]
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    validate({**defaults, **job_variables}, schema, raise_on_error=True, preprocess=True, ignore_required=False)
    # from_template_and_values needs a client only for block and variable references (there are none).
    return asyncio.run(
        ECSJobConfiguration.from_template_and_values(base_job_template, job_variables, client=object())  # type: ignore[arg-type]
    )


FAKE_OUTPUTS = {
    "ClusterArn": "arn:aws-us-gov:ecs:us-gov-west-1:123456789012:cluster/storeops-flows",
    "FlowTaskRoleArn": "arn:aws-us-gov:iam::123456789012:role/storeops-flows-FlowTaskRole",
    "ExecutionRoleArn": "arn:aws-us-gov:iam::123456789012:role/storeops-flows-ExecutionRole",
    "VpcId": "vpc-0abc",
    "SubnetIds": "subnet-0a,subnet-0b",
    "SecurityGroupId": "sg-0abc",
    "AssignPublicIp": "DISABLED",
    "FlowRunLogGroup": "/storeops/storeops-flows/flow-runs",
}
SECRET = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:storeops/prefect-AbCdEf"


@pytest.mark.parametrize("secret_variable", sorted(SECRET_JOB_VARIABLES))
def test_each_ecs_deployment_runs_as_a_fargate_task_of_the_stack(secret_variable: str) -> None:
    pool = pool_template(
        FAKE_OUTPUTS, {"PrefectApiSecretArn": SECRET, "PrefectApiSecretVariable": secret_variable}, "us-gov-west-1"
    )
    from prefect_aws.workers.ecs_worker import ECSWorker

    assert pool["job_configuration"] == ECSWorker.get_default_base_job_template()["job_configuration"]
    for name, deployment in deployments_on(WORK_POOL).items():
        variables = _resolved(deployment)
        configuration = validate_job_variables(pool, variables)
        assert configuration.cluster == FAKE_OUTPUTS["ClusterArn"], name
        assert configuration.task_run_request["launchType"] == "FARGATE"
        assert configuration.task_run_request["overrides"]["taskRoleArn"] == FAKE_OUTPUTS["FlowTaskRoleArn"]
        assert configuration.task_definition["executionRoleArn"] == FAKE_OUTPUTS["ExecutionRoleArn"]
        assert configuration.task_definition["containerDefinitions"][0]["image"] == variables["image"]
        assert (configuration.task_definition["cpu"], configuration.task_definition["memory"]) == (512, 1024)
        assert configuration.network_configuration["subnets"] == ["subnet-0a", "subnet-0b"]
        assert configuration.cloudwatch_logs_options["awslogs-group"] == FAKE_OUTPUTS["FlowRunLogGroup"]
        assert getattr(configuration, SECRET_JOB_VARIABLES[secret_variable]) == SECRET
        assert configuration.env["STOREOPS_TARGET"] == "aws"


def test_a_job_variable_prefect_aws_does_not_know_or_a_bad_size_is_refused() -> None:
    from prefect.utilities.schema_tools.validation import ValidationError

    pool = pool_template(FAKE_OUTPUTS, {}, "us-gov-west-1")
    variables = _resolved(deployments_on(WORK_POOL)["plan-shortages-ecs"])
    with pytest.raises(ValidationError):
        validate_job_variables(pool, {**variables, "memory": "1 GB"})
    with pytest.raises(ValidationError):
        validate_job_variables(pool, {**variables, "launch_type": "LAMBDA"})


def test_the_build_and_push_steps_exist_and_take_the_arguments_given() -> None:
    from prefect.utilities.importtools import import_object

    definitions = prefect_yaml()["definitions"]
    for step in [*definitions["ecs_build"], *definitions["ecs_push"], *definitions["ecs_pull"]]:
        ((name, arguments),) = step.items()
        function = import_object(name)
        inspect.signature(function).bind(**{k: v for k, v in arguments.items() if k not in {"id", "requires"}})
    for deployment in deployments_on(WORK_POOL).values():
        assert deployment["build"] == definitions["ecs_build"]
        assert deployment["push"] == definitions["ecs_push"]


# ---------------------------------------------------------------- Dockerfile


@cache
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile_workdir() -> str:
    (workdir,) = [args for instruction, args in dockerfile() if instruction == "WORKDIR"]
    return workdir


def test_the_dockerfile_installs_the_project_as_the_readme_does_on_a_pinned_slim_python() -> None:
    instructions = dockerfile()
    (base,) = [args for instruction, args in instructions if instruction == "FROM"]
    assert re.fullmatch(r"python:3\.12\.\d+-slim-\w+", base), base  # official, slim, pinned to a patch release
    (install,) = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
    assert 'pip install -e ".[aws]"' in install  # editable, as the README: sql/ stays beside the code
    assert 'pip install -e ".[local' in (ROOT / "README.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^aws = \["prefect-aws[^"]*"\]$', pyproject, re.MULTILINE)
    user = [args for instruction, args in instructions if instruction == "USER"]
    assert user, "runs as root"
    assert not user[-1].startswith(("root", "0")), user
    copied = {s.rstrip("/") for i, args in instructions if i == "COPY" for s in args.split()[:-1]}
    packages = {"storeops", "flows", "tasks", "deployments"}  # [tool.setuptools.packages.find]
    assert packages | {"sql"} <= copied
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    assert {c for c in copied if c not in {"pyproject.toml", "README.md", "prefect.toml"}} <= allowed
    assert {"pyproject.toml", "README.md", "prefect.toml"} <= allowed
    for instruction, args in instructions:  # no secrets baked in
        if instruction in {"ENV", "ARG"}:
            assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD|AWS_ACCESS", args), args
