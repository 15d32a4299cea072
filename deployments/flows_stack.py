"""Deploy the flows' AWS runtime (``deployments/flows_template.yaml``) beside the main stack, and what
Prefect's ECS work pool needs from it.

    python -m deployments.flows_stack deploy --prefect-api-url URL [--prefect-api-secret-arn ARN]
        [--prefect-api-secret-variable PREFECT_API_KEY|PREFECT_API_AUTH_STRING]
        [--subnets ID,ID [--assign-public-ip ENABLED|DISABLED]] [--image URI|newest] [--json]
    python -m deployments.flows_stack pool-template [--output FILE] [--json]
    python -m deployments.flows_stack outputs|delete [--yes] [--json]

The flows stack is ``<STOREOPS_STACK_NAME>-flows``. ``deploy`` reads the main stack's outputs (its
resource names become the template's parameters, so the flows' task role names exactly those
resources), creates or updates the stack and waits. Without ``--subnets`` it uses the account's
default VPC and its default subnets, with a public IP per task (a default VPC has no NAT gateway), and
says so. The first deploy has no image to run the worker from: the worker service starts once a deploy
names one (``--image newest``: the newest image in the stack's repository). Later deploys keep every
value not given again. ``pool-template`` prints (or writes) the ECS work pool's base job template:
prefect-aws's default with the stack's cluster, roles, network, log group and Prefect API secret as
defaults, for ``prefect work-pool create storeops-ecs --type ecs --base-job-template FILE``.

``image_repository`` is a Prefect deployment step (prefect.yaml's ECS build steps): the repository to
push to, a login to it, and the settings the runs get.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from botocore.exceptions import ClientError
from pydantic import Field, model_validator
from pydantic_settings import CliPositionalArg, SettingsConfigDict

from deployments.stack import (
    FAILED_NEEDS_DELETE,
    _first_failure,
    _stack_status,
    _wait,
    apply_stack,
    stack_parameters,
)
from flows.cli import CliOptions
from storeops.aws import AwsClients, describe_stack, stack_outputs
from storeops.aws_errors import describe_error
from storeops.cli import emit_json, run_cli
from storeops.exceptions import ConfigurationError, StackError
from storeops.settings import Settings, load_settings

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

FLOWS_TEMPLATE_PATH = Path(__file__).with_name("flows_template.yaml")
TEMPLATE_BODY_MAX_BYTES = 51_200  # CloudFormation's limit on a request's TemplateBody (tested to hold)
WORK_POOL = "storeops-ecs"  # prefect.yaml's ECS deployments and the template's WorkPoolName default
NEWEST = "newest"
# The ECS worker's job variable for each kind of Prefect API secret.
SECRET_JOB_VARIABLES = {
    "PREFECT_API_KEY": "prefect_api_key_secret_arn",
    "PREFECT_API_AUTH_STRING": "prefect_api_auth_string_secret_arn",
}
# The main stack's outputs the template takes as parameters (the queues by name, from their URLs).
MAIN_STACK_OUTPUTS = {
    "DataLakeBucket": "DataLakeBucket",
    "GlueDatabase": "GlueDatabase",
    "AthenaWorkGroup": "AthenaWorkGroup",
    "PlanningFunctionName": "PlanningFunctionName",
    "ClaimsTableName": "ClaimsTableName",
}
QUEUE_OUTPUTS = {"DispatchQueueName": "DispatchQueueUrl", "DeadLetterQueueName": "DeadLetterQueueUrl"}

Progress = Callable[[str], None]


def flows_stack_name(settings: Settings) -> str:
    """The flows stack of the main stack ``settings.stack_name``."""
    return f"{settings.stack_name}-flows"


def main_stack_parameters(stack_name: str, outputs: dict[str, str]) -> dict[str, str]:
    """The template's parameters that name the main stack's resources, from its outputs."""
    missing = sorted(o for o in [*MAIN_STACK_OUTPUTS.values(), *QUEUE_OUTPUTS.values()] if not outputs.get(o))
    if missing:
        raise StackError(
            f"stack {stack_name} lacks outputs {', '.join(missing)}", hint="run `python -m deployments.stack deploy`"
        )
    parameters = {"StoreopsStackName": stack_name}
    parameters |= {parameter: outputs[output] for parameter, output in MAIN_STACK_OUTPUTS.items()}
    parameters |= {
        parameter: outputs[output].rstrip("/").rsplit("/", 1)[-1] for parameter, output in QUEUE_OUTPUTS.items()
    }
    return parameters


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    assign_public_ip: str  # ENABLED | DISABLED
    note: str  # how it was chosen, for the user

    def parameters(self) -> dict[str, str]:
        return {"VpcId": self.vpc_id, "SubnetIds": ",".join(self.subnet_ids), "AssignPublicIp": self.assign_public_ip}


def choose_network(clients: AwsClients, subnet_ids: list[str], assign_public_ip: str | None) -> Network:
    """The given subnets (their VPC looked up; no public IP unless asked), or the default VPC's default
    subnets with a public IP (a default VPC has no NAT gateway: without one a task reaches nothing)."""
    ec2 = clients.client("ec2")
    try:
        if subnet_ids:
            subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
            vpcs = sorted({s["VpcId"] for s in subnets})
            if len(vpcs) != 1:
                raise ConfigurationError(
                    f"subnets {', '.join(subnet_ids)} are in {len(vpcs)} VPCs", hint="give subnets of one VPC"
                )
            public = assign_public_ip or "DISABLED"
            return Network(vpcs[0], tuple(subnet_ids), public, f"subnets {', '.join(subnet_ids)} of {vpcs[0]}")
        defaults = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not defaults:
            raise ConfigurationError(
                "this account and region have no default VPC", hint="give --subnets of a VPC with a way out"
            )
        vpc = defaults[0]["VpcId"]
        filters: list[FilterTypeDef] = [
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
        found = tuple(sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=filters)["Subnets"]))
    except ClientError as exc:
        raise StackError(f"cannot read the network: {describe_error(exc)}") from None
    if not found:
        raise ConfigurationError(f"the default VPC {vpc} has no default subnets", hint="give --subnets")
    public = assign_public_ip or "ENABLED"
    return Network(vpc, found, public, f"the default VPC {vpc} ({len(found)} subnets), public IP {public.lower()}")


def newest_image(clients: AwsClients, repository_uri: str) -> str:
    """The most recently pushed tagged image of the repository, as ``uri:tag``."""
    name = repository_uri.split("/", 1)[-1]
    try:
        pages = (
            clients.client("ecr")
            .get_paginator("describe_images")
            .paginate(repositoryName=name, filter={"tagStatus": "TAGGED"})
        )
        images = [image for page in pages for image in page.get("imageDetails", [])]
    except ClientError as exc:
        raise StackError(f"cannot list the images of {name}: {describe_error(exc)}") from None
    if not images:
        raise ConfigurationError(
            f"repository {name} holds no image yet",
            hint="push one first: `prefect deploy --name '*-ecs' --no-prompt` builds and pushes it",
        )
    newest = max(images, key=lambda image: image["imagePushedAt"])
    return f"{repository_uri}:{sorted(newest['imageTags'])[0]}"


def flows_stack_parameters(
    managed: dict[str, str], overrides: dict[str, str], declared: set[str], previous: set[str]
) -> list[dict[str, Any]]:
    """CreateStack/UpdateStack parameters: the main stack's names (read again every deploy) and the user's
    values, each once, and every other parameter the stack has keeps its value (deployments.stack's rule)."""
    return stack_parameters({}, {**managed, **overrides}, declared, previous)


@dataclass(frozen=True)
class DeployRequest:
    prefect_api_url: str | None = None
    prefect_api_secret_arn: str | None = None
    prefect_api_secret_variable: str | None = None
    subnet_ids: tuple[str, ...] = ()
    assign_public_ip: str | None = None
    image: str | None = None  # a URI, or NEWEST


def deploy(settings: Settings, clients: AwsClients, request: DeployRequest, progress: Progress) -> dict[str, Any]:
    """Create or update the flows stack; what was done, its outputs and the network it chose."""
    clients.check_credentials()
    name = flows_stack_name(settings)
    existing = _deployable_stack(clients, name, request)
    previous = {str(p["ParameterKey"]) for p in (existing or {}).get("Parameters", [])}
    managed = main_stack_parameters(settings.stack_name, stack_outputs(clients, settings.stack_name))
    overrides = _api_overrides(request)
    network = None
    if request.subnet_ids or existing is None:
        network = choose_network(clients, list(request.subnet_ids), request.assign_public_ip)
        progress(f"network: {network.note}")
        overrides |= network.parameters()
    elif request.assign_public_ip:
        overrides["AssignPublicIp"] = request.assign_public_ip
    overrides |= _image_override(clients, name, request, existing is not None, progress)
    template = FLOWS_TEMPLATE_PATH.read_text()
    try:
        declared = clients.client("cloudformation").validate_template(TemplateBody=template)["Parameters"]
    except ClientError as exc:
        raise StackError(f"the flows template is not valid: {describe_error(exc)}") from None
    parameters = flows_stack_parameters(managed, overrides, {str(p["ParameterKey"]) for p in declared}, previous)
    action = apply_stack(
        clients,
        name,
        {
            "StackName": name,
            "TemplateBody": template,
            "Parameters": parameters,
            "Capabilities": ["CAPABILITY_IAM"],
            "Tags": [{"Key": "project", "Value": "storeops"}],
        },
        progress,
    )
    outputs = stack_outputs(clients, name)
    if outputs.get("WorkerImage", "none") == "none":
        progress("no worker yet: push an image, then `python -m deployments.flows_stack deploy --image newest`")
    return {"stack": name, "action": action, "outputs": outputs, "network": network.note if network else "unchanged"}


def _deployable_stack(clients: AwsClients, name: str, request: DeployRequest) -> dict[str, Any] | None:
    """The flows stack as it is (None: not created yet), or a one-line reason it cannot be deployed now."""
    status = _stack_status(clients, name)
    if status in FAILED_NEEDS_DELETE or (status or "").endswith("_IN_PROGRESS"):
        raise StackError(
            f"stack {name} is in state {status}",
            hint="wait for it to finish, or delete it with `python -m deployments.flows_stack delete --yes`",
        )
    existing = describe_stack(clients, name) if status else None
    if existing is None and not request.prefect_api_url:
        raise ConfigurationError(
            f"stack {name} does not exist yet: it needs the Prefect API's address",
            hint="add --prefect-api-url https://api.prefect.cloud/api/accounts/<id>/workspaces/<id> "
            "(or your server's https://<host>/api)",
        )
    return existing


def _api_overrides(request: DeployRequest) -> dict[str, str]:
    """The Prefect API's address and credentials, where the request gives them."""
    overrides: dict[str, str] = {}
    if request.prefect_api_url:
        overrides["PrefectApiUrl"] = request.prefect_api_url
    if request.prefect_api_secret_arn is not None:
        overrides["PrefectApiSecretArn"] = request.prefect_api_secret_arn
    if request.prefect_api_secret_variable:
        overrides["PrefectApiSecretVariable"] = request.prefect_api_secret_variable
    return overrides


def _image_override(
    clients: AwsClients, name: str, request: DeployRequest, exists: bool, progress: Progress
) -> dict[str, str]:
    """The worker image the request names (``newest``: the newest in the stack's repository)."""
    if request.image == NEWEST:
        if not exists:
            raise ConfigurationError(
                f"stack {name} does not exist yet, so neither does its repository",
                hint="deploy without --image first, then push an image",
            )
        image = newest_image(clients, stack_outputs(clients, name)["RepositoryUri"])
        progress(f"worker image: {image}")
        return {"WorkerImage": image}
    return {"WorkerImage": request.image} if request.image else {}


def _stack_parameter_values(clients: AwsClients, name: str) -> dict[str, str]:
    stack = describe_stack(clients, name) or {}
    return {str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])}


def pool_template(outputs: dict[str, str], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """The ECS work pool's base job template: prefect-aws's ECS worker default, with the flows stack's
    cluster, roles, network, log group and Prefect API secret as the variables' defaults. Deployments
    add their image, CPU, memory and settings (prefect.yaml)."""
    try:
        from prefect_aws.workers.ecs_worker import ECSWorker
    except ImportError:
        raise ConfigurationError(
            "prefect-aws is not installed", hint='pip install -e ".[aws]" (the ECS worker\'s package)'
        ) from None
    template = copy.deepcopy(ECSWorker.get_default_base_job_template())
    defaults: dict[str, Any] = {
        "cluster": outputs["ClusterArn"],
        "launch_type": "FARGATE",
        "task_role_arn": outputs["FlowTaskRoleArn"],
        "execution_role_arn": outputs["ExecutionRoleArn"],
        "vpc_id": outputs["VpcId"],
        "network_configuration": {
            "subnets": outputs["SubnetIds"].split(","),
            "securityGroups": [outputs["SecurityGroupId"]],
            "assignPublicIp": outputs["AssignPublicIp"],
        },
        "configure_cloudwatch_logs": True,
        "cloudwatch_logs_options": {
            "awslogs-group": outputs["FlowRunLogGroup"],
            "awslogs-region": region,
            "awslogs-stream-prefix": "flow-run",
            "awslogs-create-group": "false",  # the stack made it, with its retention
        },
    }
    secret = parameters.get("PrefectApiSecretArn", "")
    if secret:
        defaults[SECRET_JOB_VARIABLES[parameters.get("PrefectApiSecretVariable", "PREFECT_API_KEY")]] = secret
    properties = template["variables"]["properties"]
    for variable, value in defaults.items():
        properties[variable]["default"] = value
    return dict(template)


def image_repository() -> dict[str, Any]:
    """Prefect deployment step (prefect.yaml's ECS build steps): the flows stack's repository, a login to
    its registry for the push step, and the region and stack name the runs get. Reads STOREOPS_* as every
    entry point does."""
    settings = load_settings()
    if settings.is_local:
        raise ConfigurationError(
            "the ECS deployments run on AWS", hint="set STOREOPS_TARGET=aws (and STOREOPS_REGION, STOREOPS_STACK_NAME)"
        )
    clients = AwsClients.from_settings(settings)
    clients.check_credentials()
    repository_uri = stack_outputs(clients, flows_stack_name(settings))["RepositoryUri"]
    try:
        token = clients.client("ecr").get_authorization_token()["authorizationData"][0]
    except ClientError as exc:
        raise StackError(f"cannot log in to the image registry: {describe_error(exc)}") from None
    username, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    return {
        "repository_uri": repository_uri,
        "registry_credentials": {"username": username, "password": password, "registry_url": token["proxyEndpoint"]},
        "region": settings.region,
        "stack_name": settings.stack_name,
    }


def delete(settings: Settings, clients: AwsClients, progress: Progress) -> bool:
    """Delete the flows stack (its repository's images go with it); False if there was none."""
    clients.check_credentials()
    name = flows_stack_name(settings)
    if _stack_status(clients, name) is None:
        return False
    clients.client("cloudformation").delete_stack(StackName=name)
    final = _wait(clients, name, progress)
    if final != "DELETE_COMPLETE":
        raise StackError(f"deleting stack {name} failed ({final}): {_first_failure(clients, name)}")
    return True


class FlowsStackOptions(CliOptions):
    """Deploy the flows' ECS runtime (deployments/flows_template.yaml) as <stack>-flows beside the main stack, and
    print the ECS work pool's base job template (target from STOREOPS_TARGET)."""

    model_config = SettingsConfigDict(cli_prog_name="python -m deployments.flows_stack")

    action: CliPositionalArg[Literal["deploy", "outputs", "pool-template", "delete"]] = Field(
        description="deploy: create or update; outputs: the stack's outputs; pool-template: the work pool's base job "
        "template (JSON); delete: the flows stack and its images (the main stack stays)"
    )
    prefect_api_url: str | None = Field(None, description="deploy: the Prefect API (required on the first deploy).")
    prefect_api_secret_arn: str | None = Field(
        None,
        description="deploy: the Secrets Manager secret with the API key or auth string ('' for none; kept when not "
        "given).",
    )
    prefect_api_secret_variable: Literal["PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"] | None = Field(
        None, description="deploy: what the secret holds."
    )
    subnets: list[str] | None = Field(
        None, description="deploy: subnet ids (default: the default VPC's).", json_schema_extra={"metavar": "IDS"}
    )
    assign_public_ip: Literal["ENABLED", "DISABLED"] | None = Field(None, description="deploy: a public IP per task.")
    image: str | None = Field(
        None,
        description=f"deploy: the worker's image URI, or '{NEWEST}' (the repository's newest).",
        json_schema_extra={"metavar": "URI"},
    )
    output: Path | None = Field(
        None, description="pool-template: write the JSON to this file.", json_schema_extra={"metavar": "FILE"}
    )
    yes: bool = Field(False, description="Confirm `delete`.")

    @model_validator(mode="after")
    def _combined(self) -> Self:
        deploy_only = ["prefect_api_url", "prefect_api_secret_arn", "prefect_api_secret_variable"]
        deploy_only += ["subnets", "assign_public_ip", "image"]
        if self.action != "deploy" and any(getattr(self, name) is not None for name in deploy_only):
            raise ValueError("--prefect-api-*, --subnets, --assign-public-ip and --image apply to deploy only")
        if self.output is not None and self.action != "pool-template":
            raise ValueError("--output applies to pool-template only")
        if self.action == "delete" and not self.yes:
            raise ValueError("delete removes the flows stack and its images: add --yes to confirm")
        if self.prefect_api_url and not self.prefect_api_url.startswith(("https://", "http://")):
            raise ValueError(f"--prefect-api-url {self.prefect_api_url!r}: expected an http(s) URL ending in /api")
        if self.subnets is not None and not (self.subnets and all(s.startswith("subnet-") for s in self.subnets)):
            raise ValueError(f"--subnets {','.join(self.subnets)!r}: expected subnet ids, e.g. subnet-0abc,subnet-0def")
        return self


def main(argv: list[str] | None = None) -> int:
    args = FlowsStackOptions.parse_or_exit(argv)
    settings = load_settings()
    clients = AwsClients.from_settings(settings)
    name = flows_stack_name(settings)

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json_output else sys.stdout, flush=True)

    if args.action == "deploy":
        request = DeployRequest(
            prefect_api_url=args.prefect_api_url,
            prefect_api_secret_arn=args.prefect_api_secret_arn,
            prefect_api_secret_variable=args.prefect_api_secret_variable,
            subnet_ids=tuple(args.subnets or ()),
            assign_public_ip=args.assign_public_ip,
            image=args.image,
        )
        payload = deploy(settings, clients, request, say)
        print(f"stack {name} {payload['action']}")
        for key, value in sorted(payload["outputs"].items()):
            print(f"  {key:18} {value}")
    elif args.action == "outputs":
        payload = {"stack": name, "outputs": stack_outputs(clients, name)}
        for key, value in sorted(payload["outputs"].items()):
            print(f"{key:18} {value}")
    elif args.action == "pool-template":
        payload = _pool_template_command(settings, clients, name, args.output, args.json_output, say)
    else:
        deleted = delete(settings, clients, say)
        print(f"stack {name} {'deleted' if deleted else 'did not exist'}")
        payload = {"stack": name, "deleted": deleted}
    if args.json_output:
        emit_json(payload)
    return 0


def _pool_template_command(
    settings: Settings, clients: AwsClients, name: str, output: Path | None, as_json: bool, say: Progress
) -> dict[str, Any]:
    """The work pool's base job template: written to ``output``, or printed (unless ``as_json``)."""
    template = pool_template(stack_outputs(clients, name), _stack_parameter_values(clients, name), settings.region)
    text = json.dumps(template, indent=2)
    if output is not None:
        output.write_text(text + "\n")
        create = f"prefect work-pool create {WORK_POOL} --type ecs --base-job-template {output}"
        say(f"wrote {output}: {create}")
    elif not as_json:
        print(text)
    return {"stack": name, "work_pool": WORK_POOL, "base_job_template": template}


if __name__ == "__main__":
    run_cli(main)
