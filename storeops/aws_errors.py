"""What a boto3 error says: its code, whether it means "not there", and a one-line description.

Every ``except ClientError`` in the project asks these functions instead of digging into
``exc.response["Error"]`` itself, so the sets of codes below are written once.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# The object or resource a call named does not exist (S3 answers a HEAD with a bare "404", a GET
# with "NoSuchKey"; the emulator sometimes says "NotFound"). A missing *bucket* is not among them:
# that means the stack is not deployed, which callers report rather than treat as "empty".
NOT_FOUND_CODES = frozenset(
    {
        "404",
        "NoSuchKey",
        "NotFound",
        "ResourceNotFoundException",  # DynamoDB, Firehose, Lambda, Athena
        "EntityNotFoundException",  # Glue
        "ParameterNotFound",  # SSM
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})  # HeadBucket answers a bare 404
# A conditional write lost: S3's If-Match / If-None-Match (412), or another conditional PUT on the key in flight.
PRECONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "412"})
CONDITIONAL_CONFLICT_CODE = "ConditionalRequestConflict"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (e.g. ``NoSuchKey``); "" for anything else."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: BaseException) -> bool:
    """Whether the call failed because what it named does not exist (see ``NOT_FOUND_CODES``)."""
    return error_code(exc) in NOT_FOUND_CODES


def is_missing_bucket(exc: BaseException) -> bool:
    """Whether a bucket call (HeadBucket, ListObjects...) failed because the bucket does not exist."""
    return error_code(exc) in MISSING_BUCKET_CODES


def is_precondition_failed(exc: BaseException) -> bool:
    """Whether an S3 conditional write was refused because the object changed (HTTP 412)."""
    if error_code(exc) in PRECONDITION_FAILED_CODES:
        return True
    return isinstance(exc, ClientError) and str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")) == "412"


def is_conditional_conflict(exc: BaseException) -> bool:
    """Whether another conditional PUT on the same key was in flight (S3 asks to try again)."""
    return error_code(exc) == CONDITIONAL_CONFLICT_CODE


def describe_error(exc: BaseException) -> str:
    """A one-line description of a boto3 error, naming its code."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', str(exc))}"
    return str(exc).replace("\n", " ")
