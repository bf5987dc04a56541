"""The project's Lambda functions: one asset (``lambdas/``), one runtime, arm64, each with its own
log group and its own role, which may write to that log group and nothing else until granted more.

Why a role of our own rather than the one CDK makes: CDK's attaches the AWS managed
AWSLambdaBasicExecutionRole, which lets the function create log groups and write to any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from infra.powertools import ARCHITECTURE, REPO_ROOT, RUNTIME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from constructs import Construct

LAMBDAS_DIR: Final = REPO_ROOT / "lambdas"
#: CloudWatch Logs retention in days -> CDK's name for it.
RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
#: The asset is the runtime package only; caches never ship.
ASSET_EXCLUDE: Final = ("**/__pycache__", "**/*.pyc", "**/.*")


def lambdas_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=list(ASSET_EXCLUDE))


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What differs between the project's functions."""

    handler: str
    description: str
    environment: Mapping[str, str]
    timeout: Duration
    memory_mb: int
    #: Lambda's asynchronous invocation: retries after a function error, and how long an event
    #: may wait (throttled) before it is dropped to the dead-letter queue.
    retry_attempts: int
    max_event_age: Duration
    #: None: an event Lambda gives up is dropped (the fast path's next minute supersedes it).
    dead_letter_queue: sqs.IQueue | None
    reserved_concurrency: int | None = None
    tracing: bool = False
    #: A fixed role name (other accounts' roles trust it by name); None lets CloudFormation choose.
    role_name: str | None = None
    #: Run under this role (another function's) instead of a new one; it is granted this function's
    #: log group.
    role: iam.IRole | None = None


def python_function(
    scope: Construct,
    id_: str,
    *,
    spec: FunctionSpec,
    layer: lambda_.ILayerVersion,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
) -> lambda_.Function:
    """A function of the project, with ``<id_>Logs`` and ``<id_>Role`` (unless ``spec.role``) beside it
    in ``scope``."""
    log_group = logs.LogGroup(scope, f"{id_}Logs", retention=log_retention, removal_policy=removal_policy)
    role = spec.role or iam.Role(
        scope,
        f"{id_}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Runs {spec.handler}: its own log group, plus what the stack grants it",
        role_name=spec.role_name,
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs" if spec.role is None else f"Write{id_}Logs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return lambda_.Function(
        scope,
        id_,
        description=spec.description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=lambdas_code(),
        handler=spec.handler,
        layers=[layer],
        role=role,
        log_group=log_group,
        environment=dict(spec.environment),
        timeout=spec.timeout,
        memory_size=spec.memory_mb,
        reserved_concurrent_executions=spec.reserved_concurrency,
        retry_attempts=spec.retry_attempts,
        max_event_age=spec.max_event_age,
        dead_letter_queue=spec.dead_letter_queue,
        tracing=lambda_.Tracing.ACTIVE if spec.tracing else lambda_.Tracing.DISABLED,
    )


def dead_letter_queue(scope: Construct, id_: str) -> sqs.Queue:
    """An SQS-encrypted, TLS-only queue that keeps what it receives for the longest SQS allows.

    SQS-managed encryption rather than a KMS key: the senders (EventBridge Scheduler, Lambda) then
    need no key permissions, and nothing else reads these queues but the operator.
    """
    return sqs.Queue(
        scope,
        id_,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
