"""The AWS client factory and the stack's resource names.

Every boto3 client and every awswrangler call in the project goes through ``AwsClients``:
it applies the endpoint (the embedded emulator's, or AWS's own), standard-mode retries and
connect/read timeouts. Business code receives an ``AwsClients`` and never builds a client.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import BaseModel, ConfigDict, Field

from storeops.aws_errors import describe_error
from storeops.exceptions import ConfigurationError, EmulatorError, StackError
from storeops.faults import FaultInjector, FaultPlan

if TYPE_CHECKING:  # the stubs are a test dependency: the Lambda's runtime has none
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_firehose import FirehoseClient
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

    from storeops.settings import Settings

# The emulator accepts any credentials; fixed dummy ones keep a user's real keys out of it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def botocore_config(settings: Settings, max_pool_connections: int = 32) -> Config:
    """Standard retry mode with bounded attempts, and explicit timeouts."""
    return Config(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )


class AwsClients:
    """Builds and caches boto3 clients for one target; thread-safe.

    ``endpoint_url=None`` means AWS's own endpoints (or, inside a Lambda on the emulator, the
    ``AWS_ENDPOINT_URL`` the emulator injects): no code path depends on which.
    """

    def __init__(
        self,
        session: boto3.Session,
        config: Config,
        endpoint_url: str | None = None,
        faults: FaultInjector | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.endpoint_url = endpoint_url
        self.faults = faults
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsClients:
        """The factory for CLIs and flows: the emulator for `local`, the credential chain for `aws`."""
        if settings.is_local:
            session = boto3.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
                aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
                region_name=settings.region,
            )
        else:
            try:
                session = boto3.Session(region_name=settings.region, profile_name=settings.aws_profile)
            except BotoCoreError as exc:
                raise ConfigurationError(
                    f"cannot use AWS profile {settings.aws_profile!r}: {exc}",
                    hint="set STOREOPS_AWS_PROFILE to a profile from ~/.aws/config, or unset it",
                ) from None
        faults = FaultInjector(FaultPlan.parse(settings.fault_injection)) if settings.fault_injection else None
        return cls(session, botocore_config(settings), settings.endpoint_url, faults)

    @classmethod
    def for_lambda(cls, region: str, config: Config | None = None) -> AwsClients:
        """The factory inside a Lambda: the function's role, the runtime's endpoints."""
        session = boto3.Session(region_name=region)
        return cls(session, config or Config(region_name=region, retries={"mode": "standard"}))

    @overload
    def client(self, service: Literal["s3"], read_timeout: float | None = None) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"], read_timeout: float | None = None) -> SQSClient: ...
    @overload
    def client(self, service: Literal["dynamodb"], read_timeout: float | None = None) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["firehose"], read_timeout: float | None = None) -> FirehoseClient: ...
    @overload
    def client(self, service: Literal["athena"], read_timeout: float | None = None) -> AthenaClient: ...
    @overload
    def client(self, service: Literal["glue"], read_timeout: float | None = None) -> GlueClient: ...
    @overload
    def client(self, service: Literal["lambda"], read_timeout: float | None = None) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["cloudformation"], read_timeout: float | None = None) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["ec2"], read_timeout: float | None = None) -> EC2Client: ...
    @overload
    def client(self, service: Literal["ssm"], read_timeout: float | None = None) -> SSMClient: ...
    @overload
    def client(self, service: str, read_timeout: float | None = None) -> Any: ...

    def client(self, service: str, read_timeout: float | None = None) -> Any:
        """A cached client for ``service`` with this factory's endpoint and config.

        ``read_timeout`` overrides the default for slow calls (a synchronous Lambda invoke).
        """
        key = f"{service}:{read_timeout}"
        with self._lock:
            if key not in self._clients:
                config = self.config if read_timeout is None else self.config.merge(Config(read_timeout=read_timeout))
                client = self.session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
                if self.faults is not None:
                    self.faults.register(client)
                self._clients[key] = client
            return self._clients[key]

    def injected_faults(self) -> dict[str, int]:
        """Faults injected so far, by ``service.Operation.kind`` (empty unless injection is on)."""
        return dict(self.faults.counts) if self.faults is not None else {}

    def check_credentials(self) -> None:
        """Fail in one line when the `aws` target has no credentials to use."""
        if self.endpoint_url is not None:
            return
        try:
            credentials = self.session.get_credentials()
            problem = "" if credentials is not None else "none found"
        except BotoCoreError as exc:
            problem = str(exc).replace("\n", " ")
        if problem:
            raise ConfigurationError(
                f"no usable AWS credentials for the aws target ({problem})",
                hint="run `aws configure` or `aws sso login`, set STOREOPS_AWS_PROFILE, or use STOREOPS_TARGET=local",
            )

    def configure_awswrangler(self) -> None:
        """Point awswrangler at this factory's endpoint and botocore config.

        awswrangler builds its own clients from the ``boto3_session`` it is given plus its
        process-wide ``wr.config``; this is the one place that sets that config.
        """
        import awswrangler as wr

        for service in ("s3", "athena", "glue", "sts"):
            setattr(wr.config, f"{service}_endpoint_url", self.endpoint_url)
        wr.config.botocore_config = self.config


class StackResources(BaseModel):
    """Names of the stack's resources, read from its CloudFormation outputs (not repeated in code)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    data_lake_bucket: str = Field(alias="DataLakeBucket")
    delivery_stream: str = Field(alias="DeliveryStreamName")
    glue_database: str = Field(alias="GlueDatabase")
    inventory_table: str = Field(alias="InventoryTable")
    ledger_table: str = Field(alias="DispatchLedgerTable")
    rollup_table: str = Field(alias="RollupTable")
    products_table: str = Field(alias="ProductsTable")
    daily_table: str = Field(alias="DailyTable")
    forecast_table: str = Field(alias="ForecastTable")
    planogram_table: str = Field(alias="PlanogramTable")
    promotions_table: str = Field(alias="PromotionsTable")
    athena_workgroup: str = Field(alias="AthenaWorkGroup")
    planning_function: str = Field(alias="PlanningFunctionName")
    dispatch_queue_url: str = Field(alias="DispatchQueueUrl")
    dead_letter_queue_url: str = Field(alias="DeadLetterQueueUrl")
    claims_table: str = Field(alias="ClaimsTableName")
    firehose_buffer_seconds: int = Field(alias="FirehoseBufferSeconds")
    raw_readings_retention_days: int = Field(alias="RawReadingsRetentionDays")

    @classmethod
    def load(cls, clients: AwsClients, stack_name: str) -> StackResources:
        """Read the outputs of a complete stack, or explain what to run."""
        outputs = stack_outputs(clients, stack_name)
        missing = [f.alias for f in cls.model_fields.values() if f.alias and f.alias not in outputs]
        if missing:
            raise StackError(
                f"stack {stack_name} lacks outputs {', '.join(missing)} (deployed from an older template?)",
                hint="run `python -m deployments.stack deploy`",
            )
        return cls.model_validate(outputs)


STABLE_STACK_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"})


def describe_stack(clients: AwsClients, stack_name: str) -> dict[str, Any] | None:
    """The stack's description, or None if it does not exist; one-line errors otherwise."""
    try:
        stacks = clients.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except EndpointConnectionError:
        raise EmulatorError(
            f"cannot reach AWS endpoint {clients.endpoint_url or 'of the region'}",
            hint="start the emulator with `python -m deployments.localaws start` (local target) "
            "or check your network (aws target)",
        ) from None
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise StackError(f"cannot read stack {stack_name}: {describe_error(exc)}") from None
    return dict(stacks[0])


def stack_outputs(clients: AwsClients, stack_name: str) -> dict[str, str]:
    """The outputs of ``stack_name`` as a dict; a one-line error if it is missing or failed."""
    stack = describe_stack(clients, stack_name)
    if stack is None:
        raise StackError(f"stack {stack_name} does not exist", hint="run `python -m deployments.stack deploy`")
    status = stack["StackStatus"]
    if status not in STABLE_STACK_STATES:
        raise StackError(
            f"stack {stack_name} is in state {status}",
            hint="redeploy with `python -m deployments.stack deploy`, or delete it with "
            "`python -m deployments.stack delete --yes` and deploy again",
        )
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
