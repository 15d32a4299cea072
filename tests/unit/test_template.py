"""Static checks of the CloudFormation template: cfn-lint, least privilege, encryption."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from deployments.stack import TEMPLATE_PATH
from storeops.planning.rollup import MARKER_PREFIX, ROLLUP_COLUMNS, ROLLUP_PREFIX, part_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    return parsed


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every policy statement: roles' inline policies and AWS::IAM::Policy resources."""
    found = []
    for role in resources_of(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(policy["PolicyDocument"]["Statement"])
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    statements = _statements(template)
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in actions, statement
        assert not any(a.endswith(":*") for a in actions), statement
        assert "*" not in resources, statement
    for role in resources_of(template, "AWS::IAM::Role").values():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        assert not any("FullAccess" in str(arn) for arn in managed)


def test_everything_is_encrypted_at_rest_and_the_lake_is_private(template: dict[str, Any]) -> None:
    (bucket,) = resources_of(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["BucketEncryption"]
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (stream,) = resources_of(template, "AWS::KinesisFirehose::DeliveryStream").values()
    assert stream["Properties"]["DeliveryStreamEncryptionConfigurationInput"]["KeyType"]
    for table in resources_of(template, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True


def test_bucket_policy_denies_insecure_transport(template: dict[str, Any]) -> None:
    (policy,) = resources_of(template, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_firehose_writes_hive_style_time_partitions(template: dict[str, Any]) -> None:
    (stream,) = resources_of(template, "AWS::KinesisFirehose::DeliveryStream").values()
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"] == "inventory/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    assert destination["ErrorOutputPrefix"].startswith("errors/")
    # records arrive gzip-compressed (see storeops/stores/firehose.py): objects are gzip, by extension
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["FileExtension"] == ".json.gz"
    assert destination["BufferingHints"]


def test_dispatch_queue_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    queue = template["Resources"]["DispatchQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def _actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_the_planner_may_make_every_athena_call_it_makes(template: dict[str, Any]) -> None:
    role = template["Resources"]["PlanningFunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    athena = {a for s in statements for a in _actions(s) if a.startswith("athena:")}
    # awswrangler's read_sql_query, plus naming a failed query (storeops/athena.py::failed_query_id)
    assert athena == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "athena:GetWorkGroup",
        "athena:ListQueryExecutions",
        "athena:BatchGetQueryExecution",
    }
    (statement,) = [s for s in statements if "athena:ListQueryExecutions" in _actions(s)]
    assert "workgroup/${AthenaWorkGroup}" in str(statement["Resource"])  # its own workgroup only


def test_one_plan_at_a_time(template: dict[str, Any]) -> None:
    function = template["Resources"]["PlanningFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservesConcurrency", {"Ref": "PlanningReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    parameter = template["Parameters"]["PlanningReservedConcurrency"]
    assert parameter["Default"] == 1
    assert template["Conditions"]["ReservesConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PlanningReservedConcurrency"}, 0]}]
    }


def test_the_stream_is_created_after_its_role_may_write_to_the_lake(template: dict[str, Any]) -> None:
    stream = template["Resources"]["DeliveryStream"]
    depends = stream["DependsOn"] if isinstance(stream["DependsOn"], list) else [stream["DependsOn"]]
    (policy_name,) = [d for d in depends if template["Resources"][d]["Type"] == "AWS::IAM::Policy"]
    policy = template["Resources"][policy_name]["Properties"]
    assert policy["Roles"] == [{"Ref": "FirehoseRole"}]
    assert stream["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"] == {
        "Fn::GetAtt": ["FirehoseRole", "Arn"]
    }
    writes = [s for s in policy["PolicyDocument"]["Statement"] if "s3:PutObject" in _actions(s)]
    assert writes
    assert not template["Resources"]["FirehoseRole"]["Properties"].get("Policies")  # the dependency holds it all


def test_the_lake_is_retained_when_the_stack_goes(template: dict[str, Any]) -> None:
    for name in ("DataLakeBucket", "DataLakeBucketPolicy"):
        assert template["Resources"][name]["DeletionPolicy"] == "Retain"
        assert template["Resources"][name]["UpdateReplacePolicy"] == "Retain"
    # deployments.stack.lake_bucket_name finds a retained lake by the template's naming
    assert template["Resources"]["DataLakeBucket"]["Properties"]["BucketName"] == {
        "Fn::Sub": "${AWS::StackName}-lake-${AWS::AccountId}-${AWS::Region}"
    }


def test_every_checkov_skip_says_why(template: dict[str, Any]) -> None:
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV_"), name
        assert len(skip["comment"]) > 30, f"{name} {skip['id']}: say why in one line"
        assert "\n" not in skip["comment"]


def test_the_scan_cutoff_and_the_bytes_label_are_stack_parameters(template: dict[str, Any]) -> None:
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    assert template["Parameters"]["ScannedBytesSource"]["AllowedValues"] == ["athena", "s3-estimate"]
    variables = template["Resources"]["PlanningFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STOREOPS_SCANNED_BYTES_SOURCE"] == {"Ref": "ScannedBytesSource"}


LAKE = "arn:${AWS::Partition}:s3:::${AWS::StackName}-lake-${AWS::AccountId}-${AWS::Region}"


def _planner_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["PlanningFunctionRole"]["Properties"]
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r else str(r) for r in found]


def test_the_hourly_rollup_is_a_parquet_table_by_event_hour_with_partition_projection(
    template: dict[str, Any],
) -> None:
    raw = template["Resources"]["InventoryTable"]["Properties"]["TableInput"]
    table = template["Resources"]["InventoryHourlyTable"]["Properties"]["TableInput"]
    assert table["Name"] == "inventory_hourly"
    assert {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]} == ROLLUP_COLUMNS
    assert table["PartitionKeys"] == raw["PartitionKeys"]
    projection = {k: v for k, v in table["Parameters"].items() if k.startswith("projection.")}
    assert projection == {k: v for k, v in raw["Parameters"].items() if k.startswith("projection.")}
    assert table["Parameters"]["classification"] == "parquet"
    storage = table["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert "Parquet" in storage["InputFormat"]
    assert storage["Location"]["Fn::Sub"].endswith(f"/{ROLLUP_PREFIX}")
    assert table["Parameters"]["storage.location.template"]["Fn::Sub"].endswith(
        f"/{ROLLUP_PREFIX}dt=${{!dt}}/hour=${{!hour}}/"
    )
    assert part_key(datetime(2026, 11, 27, 10, tzinfo=UTC), 0).startswith(ROLLUP_PREFIX)
    variables = template["Resources"]["PlanningFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STOREOPS_ROLLUP_TABLE"] == {"Ref": "InventoryHourlyTable"}
    assert template["Outputs"]["RollupTable"]["Value"] == {"Ref": "InventoryHourlyTable"}


def test_the_planner_lists_and_reads_only_the_tables_a_retailer_holds_and_never_the_simulator(
    template: dict[str, Any],
) -> None:
    statements = _planner_statements(template)
    listing = [s for s in statements if "s3:ListBucket" in _actions(s)]
    (statement,) = listing
    assert _actions(statement) == ["s3:ListBucket"]
    assert _resources(statement) == [LAKE]
    prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
    assert f"{MARKER_PREFIX}*" in prefixes  # the rollup's markers (the watermark)
    assert set(prefixes) == {
        f"{MARKER_PREFIX}*",
        f"{ROLLUP_PREFIX}*",
        "inventory/*",
        "dispatch-ledger/*",
        "reference/products/*",
        "reference/planogram/*",
        "reference/promotions/*",
        "forecast/demand_forecast/*",  # the forecast table every plan joins
        "forecast-state/demand_forecast/*",  # its markers: which day's forecast is the latest
        "athena-results/*",
    }  # Athena lists the tables' locations and the results with the planner's credentials
    reads = {r for s in statements if "s3:GetObject" in _actions(s) for r in _resources(s)}
    assert f"{LAKE}/rollup/*" in reads
    assert f"{LAKE}/forecast/*" in reads
    # the planner sees what a retailer's systems hold, never the simulator's state or record
    assert not any("simulator" in r or r == f"{LAKE}/*" for r in reads)
    assert not any(p.startswith("simulator") or p == "*" for p in prefixes)
    assert not any("rollup-state" in r for r in reads)  # listing the markers is enough
    writes = {r for s in statements if "s3:PutObject" in _actions(s) for r in _resources(s)}
    assert not any("rollup" in r for r in writes)  # the rollup flow writes it, not the planner
    assert not any("forecast" in r for r in writes)  # nor the forecast: the forecast flow does


NEW_ACCOUNT_LAMBDA_MEMORY_MB = 3008  # a new account's largest function memory until a quota increase


def test_the_planner_has_the_memory_a_chain_wide_plan_needs_and_fits_a_new_account(template: dict[str, Any]) -> None:
    """The planner streams its query's result in chunks: bench.scale's plan over 2,000 x 1,000 pairs peaks
    under PLANNER_PEAK_RSS_TARGET_MB in the function; the memory is a parameter whose default leaves room for
    that and stays within a new account's 3,008 MB."""
    from bench.scale import PLANNER_PEAK_RSS_TARGET_MB

    function = template["Resources"]["PlanningFunction"]["Properties"]
    assert function["MemorySize"] == {"Ref": "PlanningMemoryMB"}
    memory = template["Parameters"]["PlanningMemoryMB"]
    assert (memory["MinValue"], memory["MaxValue"]) == (128, 10240)  # Lambda's own bounds
    assert 1.3 * PLANNER_PEAK_RSS_TARGET_MB <= memory["Default"] <= NEW_ACCOUNT_LAMBDA_MEMORY_MB
    assert "2,000 stores x 1,000 products" in memory["Description"]  # the largest plan the default handles
    assert function["Timeout"] >= 2 * 54.2  # the chain-wide plan took 54.2 s on 2 cores


def test_the_athena_engine_version_is_pinned(template: dict[str, Any]) -> None:
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert workgroup["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}


def test_no_arn_names_a_partition_literally() -> None:
    """``${AWS::Partition}`` in the template, the caller's partition in code: the stack deploys to China and
    GovCloud as well."""
    sources = [TEMPLATE_PATH]
    for folder in ("deployments", "storeops", "flows", "tasks"):
        sources += sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.yaml"))
    offenders = [str(p.relative_to(ROOT)) for p in sources if "arn:aws:" in p.read_text()]
    assert not offenders


# ---------------------------------------------------------------- retention


def _lifecycle(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rules = template["Resources"]["DataLakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert all(r["Status"] == "Enabled" for r in rules)
    return {r["Id"]: r for r in rules}


def test_raw_readings_and_the_ledger_expire_after_their_retention_parameters(template: dict[str, Any]) -> None:
    from storeops.ledger import LEDGER_PREFIX
    from storeops.stores.backfill import INVENTORY_PREFIX

    rules = _lifecycle(template)
    assert rules["expire-raw-readings"]["Prefix"] == INVENTORY_PREFIX
    assert rules["expire-raw-readings"]["ExpirationInDays"] == {"Ref": "RawReadingsRetentionDays"}
    assert rules["expire-dispatch-ledger"]["Prefix"] == LEDGER_PREFIX
    assert rules["expire-dispatch-ledger"]["ExpirationInDays"] == {"Ref": "LedgerRetentionDays"}
    assert rules["expire-hourly-rollup"]["Prefix"] == ROLLUP_PREFIX
    assert rules["expire-hourly-rollup-markers"]["Prefix"] == MARKER_PREFIX  # markers go with their files
    for rule in ("expire-hourly-rollup", "expire-hourly-rollup-markers"):
        assert rules[rule]["ExpirationInDays"] == {"Ref": "HourlyRollupRetentionDays"}
    assert rules["expire-delivery-errors"]["Prefix"] == "errors/"
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def test_the_history_the_forecast_learns_from_never_expires(template: dict[str, Any]) -> None:
    from storeops.planning.forecast import DAILY_MARKERS, DAILY_PREFIX, FORECAST_MARKERS, FORECAST_PREFIX
    from storeops.stores.reference import REFERENCE_PREFIX

    expiring = [r["Prefix"] for r in _lifecycle(template).values() if "ExpirationInDays" in r]
    kept = (DAILY_PREFIX, DAILY_MARKERS, FORECAST_PREFIX, FORECAST_MARKERS, REFERENCE_PREFIX)
    assert not [(p, k) for p in expiring for k in kept if k.startswith(p) or p.startswith(k)]


def _lookback_bound_hours() -> float:
    """The longest plan window a request may ask for (``LookbackHours``' upper bound)."""
    from storeops.parameters import LookbackHours

    (field,) = LookbackHours.__metadata__
    (bound,) = [m.le for m in field.metadata if getattr(m, "le", None) is not None]
    return float(bound)


def _days(delta: Any) -> float:
    return float(delta.total_seconds() / 86400)


def test_raw_readings_outlive_the_longest_raw_window_the_code_reads(template: dict[str, Any]) -> None:
    """A plan's lookback (at most LookbackHours' bound) plus the partition slack and Firehose's arrival spill, the
    rollup's catch-up, and a day for S3 rounding an expiry to the next midnight UTC: the least retention allowed,
    and the default above it."""
    import math

    from storeops.parameters import MAX_LOOKBACK_HOURS as MAX_BACKFILL_HOURS
    from storeops.planning.models import ARRIVAL_SPILL, PARTITION_SLACK
    from storeops.planning.rollup import CATCH_UP_HOURS

    bound = _lookback_bound_hours()
    plan_days = bound / 24 + _days(PARTITION_SLACK + ARRIVAL_SPILL)
    longest = max(plan_days, CATCH_UP_HOURS / 24, MAX_BACKFILL_HOURS / 24)
    parameter = template["Parameters"]["RawReadingsRetentionDays"]
    assert parameter["MinValue"] >= math.ceil(longest) + 1
    assert parameter["Default"] > parameter["MinValue"]


def test_the_ledger_and_the_hourly_rollup_outlive_what_reads_them(template: dict[str, Any]) -> None:
    from storeops.parameters import MAX_FORECAST_HISTORY_DAYS as MAX_HISTORY_DAYS
    from storeops.planning.models import LEDGER_DAYS
    from storeops.stores.simulation import DELIVERY_HORIZON_DAYS

    ledger = template["Parameters"]["LedgerRetentionDays"]
    assert ledger["MinValue"] >= max(LEDGER_DAYS + 1, DELIVERY_HORIZON_DAYS) + 2  # its partitions, S3's rounding
    assert ledger["Default"] >= 365  # a year of dispatches for audit
    hourly = template["Parameters"]["HourlyRollupRetentionDays"]
    bound = _lookback_bound_hours()
    # the forecast flow rolls missing days of its history from the hourly rollup; the plain rule reads it too
    assert hourly["MinValue"] >= max(MAX_HISTORY_DAYS, bound / 24) + 2
    assert hourly["Default"] >= hourly["MinValue"]


# ---------------------------------------------------------------- watching


def _alarm(template: dict[str, Any], name: str) -> dict[str, Any]:
    alarm = template["Resources"][name]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    properties: dict[str, Any] = alarm["Properties"]
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["OKActions"] == [{"Ref": "AlarmTopic"}]
    return properties


def test_every_alarm_notifies_the_topic(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert set(alarms) == {
        "DeadLetterQueueAlarm",
        "PlannerErrorsAlarm",
        "PlannerThrottlesAlarm",
        "FirehoseFreshnessAlarm",
        "RollupLagAlarm",
        "TruckHeartbeatAlarm",
    }
    for name in alarms:
        _alarm(template, name)


def test_the_dead_letter_queue_alarm_fires_on_one_message(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "DeadLetterQueueAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_planner_alarms_on_errors_and_on_throttles_that_last(template: dict[str, Any]) -> None:
    for name, metric in (("PlannerErrorsAlarm", "Errors"), ("PlannerThrottlesAlarm", "Throttles")):
        alarm = _alarm(template, name)
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "PlanningFunction"}}]
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)
    throttles = _alarm(template, "PlannerThrottlesAlarm")
    # one overlap (a plan refused and retried) is expected; two plan intervals in a row are not
    assert throttles["Period"] == 900
    assert throttles["EvaluationPeriods"] == throttles["DatapointsToAlarm"] == 2


def test_firehose_freshness_is_measured_beyond_the_buffer_interval(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "FirehoseFreshnessAlarm")
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["late"]["Expression"] == {"Fn::Sub": "freshness - ${FirehoseBufferSeconds}"}
    stat = metrics["freshness"]["MetricStat"]
    assert stat["Metric"]["MetricName"] == "DeliveryToS3.DataFreshness"
    assert stat["Metric"]["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": {"Ref": "DeliveryStream"}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (900, "GreaterThanThreshold")  # 15 min late


def test_the_custom_metrics_alarms_watch_what_the_flows_put(template: dict[str, Any]) -> None:
    from storeops.metrics import HEARTBEAT_EVERY_SECONDS, NAMESPACE, ROLLUP_LAG, STACK_DIMENSION, TRUCK_HEARTBEAT

    for name, metric in (("RollupLagAlarm", ROLLUP_LAG), ("TruckHeartbeatAlarm", TRUCK_HEARTBEAT)):
        alarm = _alarm(template, name)
        assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, metric)
        assert alarm["Dimensions"] == [{"Name": STACK_DIMENSION, "Value": {"Ref": "AWS::StackName"}}]
        assert alarm["TreatMissingData"] == "breaching"  # a flow that stopped reporting is the failure
    heartbeat = _alarm(template, "TruckHeartbeatAlarm")
    assert heartbeat["Period"] == HEARTBEAT_EVERY_SECONDS
    assert heartbeat["EvaluationPeriods"] == heartbeat["DatapointsToAlarm"] == 3  # missing for 3 minutes
    assert (heartbeat["Threshold"], heartbeat["ComparisonOperator"]) == (1, "LessThanThreshold")
    lag = _alarm(template, "RollupLagAlarm")
    assert (lag["Threshold"], lag["ComparisonOperator"], lag["Period"]) == (3, "GreaterThanThreshold", 3600)
    assert lag["EvaluationPeriods"] == lag["DatapointsToAlarm"] == 2


def test_the_alarm_topic_is_encrypted_with_a_key_alarms_and_budgets_may_use(template: dict[str, Any]) -> None:
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = template["Resources"]["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    services = [s["Principal"]["Service"] for s in key["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})]
    assert services == [["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]]
    policy = template["Resources"]["AlarmTopicPolicy"]["Properties"]
    publishers = {
        s["Principal"]["Service"]
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Action"] == "sns:Publish"
    }
    assert publishers == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_the_email_subscription_and_the_budget_are_optional(template: dict[str, Any]) -> None:
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    # the emulator's CloudFormation has no AWS::Budgets::Budget: off unless asked for
    assert template["Parameters"]["MonthlyBudgetUsd"]["Default"] == 0
    budget = template["Resources"]["MonthlyBudget"]
    assert budget["Condition"] == "HasBudget"
    assert template["Conditions"]["HasBudget"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonthlyBudgetUsd"}, 0]}]}
    subscribers = [s for n in budget["Properties"]["NotificationsWithSubscribers"] for s in n["Subscribers"]]
    assert subscribers
    assert all(s == {"SubscriptionType": "SNS", "Address": {"Ref": "AlarmTopic"}} for s in subscribers)


def test_firehose_logs_its_delivery_errors_to_a_stream_only_it_writes(template: dict[str, Any]) -> None:
    stream = template["Resources"]["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert stream["CloudWatchLoggingOptions"] == {
        "Enabled": True,
        "LogGroupName": {"Ref": "DeliveryLogGroup"},
        "LogStreamName": {"Ref": "DeliveryErrorLogStream"},
    }
    policy = template["Resources"]["FirehoseDeliveryPolicy"]["Properties"]["PolicyDocument"]
    (statement,) = [s for s in policy["Statement"] if any(a.startswith("logs:") for a in _actions(s))]
    assert _actions(statement) == ["logs:PutLogEvents"]
    assert _resources(statement) == [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${DeliveryLogGroup}"
        ":log-stream:${DeliveryErrorLogStream}"
    ]


def test_the_daily_rollup_and_the_forecast_are_day_partitioned_parquet_tables(template: dict[str, Any]) -> None:
    from storeops.planning.forecast import DAILY_COLUMNS, DAILY_PREFIX, FORECAST_COLUMNS, FORECAST_PREFIX

    for resource, prefix, columns in (
        ("InventoryDailyTable", DAILY_PREFIX, DAILY_COLUMNS),
        ("DemandForecastTable", FORECAST_PREFIX, FORECAST_COLUMNS),
    ):
        table = template["Resources"][resource]["Properties"]["TableInput"]
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
        assert table["Parameters"]["projection.enabled"] == "true"
        storage = table["StorageDescriptor"]
        assert storage["Location"]["Fn::Sub"].endswith(f"/{prefix}")
        assert {c["Name"]: c["Type"] for c in storage["Columns"]} == columns  # what forecast.py writes
    variables = template["Resources"]["PlanningFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STOREOPS_FORECAST_TABLE"] == {"Ref": "DemandForecastTable"}
    assert variables["STOREOPS_DAILY_TABLE"] == {"Ref": "InventoryDailyTable"}


def test_the_emulator_gets_the_template_without_its_aws_only_block(tmp_path: Path) -> None:
    """The emulator's CloudFormation refuses metric math and AWS::Budgets::Budget: the deployer leaves out exactly
    the freshness alarm and the budget there, and the rest is the same template (still valid)."""
    from deployments.stack import template_for
    from storeops.settings import load_settings

    text = TEMPLATE_PATH.read_text()
    assert template_for(load_settings(target="aws", region="eu-west-1"), text) == text
    local = tmp_path / "local.yaml"
    local.write_text(template_for(load_settings(target="local"), text))
    parsed, errors = decode(str(local))
    assert not errors
    full, _ = decode(str(TEMPLATE_PATH))
    assert set(full["Resources"]) - set(parsed["Resources"]) == {"FirehoseFreshnessAlarm", "MonthlyBudget"}
    assert {k: v for k, v in full["Resources"].items() if k in parsed["Resources"]} == parsed["Resources"]
    assert parsed["Parameters"] == full["Parameters"]


def test_the_glue_tables_declare_what_the_code_writes(template: dict[str, Any]) -> None:
    """The ledger's rows and the product master's columns, as the Glue tables Athena reads them declare."""
    from storeops.ledger import LedgerRow
    from storeops.stores.reference import PRODUCTS_COLUMNS

    def columns(table: str) -> list[str]:
        (resource,) = [
            r
            for r in resources_of(template, "AWS::Glue::Table").values()
            if r["Properties"]["TableInput"]["Name"] == table
        ]
        return [c["Name"] for c in resource["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]]

    assert columns("dispatch_ledger") == list(LedgerRow.model_fields)
    assert columns("products") == list(PRODUCTS_COLUMNS)
