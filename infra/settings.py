"""What a deployment of the monitor can be told, checked before anything is built.

Two kinds of settings, one source of truth each:

- the infrastructure's own (schedule, timeout, memory, emails, Slack, removal policy...), checked
  here, each with an error that names the setting, the value and what is allowed;
- the runtime's (thresholds, forecast, rate limits...), which are environment variables of the
  monitor function and are checked by the runtime's own parser,
  :meth:`quota_monitor.config.Settings.from_env`, at synth time: a value the function would refuse
  at cold start never reaches a deploy.

Setting names in messages are the ``cdk.json`` context keys (``scheduleMinutes``); the fields of
:class:`MonitorSettings` are the same names in snake case.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from aws_cdk import Token

from quota_monitor import ConfigError, Settings, route_name_problem

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class SettingError(ValueError):
    """A deployment setting that cannot be used; the message names it, its value and what is allowed."""


def bad_setting(name: str, value: object, allowed: str) -> SettingError:
    return SettingError(f"{name}={value!r} is not allowed: {allowed}")


#: Runtime settings that a deployment may set: context key -> the function's environment variable.
#: Values are checked by the runtime (``quota_monitor.config``), not here.
RUNTIME_SETTINGS: Final[Mapping[str, str]] = {
    "metricNamespace": "METRIC_NAMESPACE",
    "thresholds": "THRESHOLDS",
    "recoveryNotifications": "RECOVERY_NOTIFICATIONS",
    "forecastEnabled": "FORECAST_ENABLED",
    "forecastMinElapsedPercent": "FORECAST_MIN_ELAPSED_PERCENT",
    "forecastMinUtilizationPercent": "FORECAST_MIN_UTILIZATION_PERCENT",
    "forecastMarginPercent": "FORECAST_MARGIN_PERCENT",
    "digestMinAlerts": "DIGEST_MIN_ALERTS",
    "apiGatewayMaxRps": "APIGATEWAY_MAX_RPS",
    "apiGatewayBurst": "APIGATEWAY_BURST",
    "apiGatewayMaxConcurrency": "APIGATEWAY_MAX_CONCURRENCY",
    "apiGatewayMaxAttempts": "APIGATEWAY_MAX_ATTEMPTS",
    "usagePageSize": "USAGE_PAGE_SIZE",
    "weekStartDay": "WEEK_START_DAY",
    "crossCheckPlanKeys": "CROSS_CHECK_PLAN_KEYS",
    "keyMetrics": "KEY_METRICS",
    "regions": "REGIONS",
}
_CONTEXT_KEY_OF = {variable: key for key, variable in RUNTIME_SETTINGS.items()}
#: Variables the stack sets from settings of its own: variable -> the setting behind it.
_STACK_OWNED: Final[Mapping[str, str]] = {
    "ALERT_ROUTES": "alertRoutes",
    "EVENT_BUS_NAME": "eventBus",
    "SPOKE_ACCOUNTS_PARAMETER": "spokeAccounts",
    "SPOKE_ROLE_NAME": "spokeRoleName",
    "KEY_SNAPSHOTS": "quotaEndpoint",
    "ARCHIVE_BUCKET": "archive",
    "FAST_SCHEDULE_MINUTES": "fastScheduleMinutes",
    "SCHEDULE_MINUTES": "scheduleMinutes",
}

#: Stand-ins for values CloudFormation fills in at deploy time (the topic ARN, the table name), so
#: that the runtime's parser can check the rest of the environment at synth time.
DEPLOY_TIME_EXAMPLES: Final[Mapping[str, str]] = {
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:quota-alerts",
    "ALERT_TABLE_NAME": "quota-alert-state",
}

#: The spoke role's name in every spoke account (:mod:`infra.spoke`), unless ``spokeRoleName`` says otherwise.
DEFAULT_SPOKE_ROLE_NAME: Final = "ApiGatewayQuotaMonitorSpoke"
#: Lambda's limit on a function's environment variables, all names and values together (Lambda quotas).
MAX_ENVIRONMENT_BYTES: Final = 4096
#: A value CloudFormation fills in at deploy time (a topic's ARN, a table's name) is counted as an ARN
#: of the longest partition and region (``arn:aws-us-gov:sns:us-gov-west-1:<account>:``), then a name
#: as CloudFormation makes them: ``<stack name>-<logical id>-<random>``, the logical id and the random
#: part counted as this many characters.
ARN_PREFIX_BYTES: Final = 46
GENERATED_NAME_BYTES: Final = 48


def deploy_time_value_bytes(stack_name: str) -> int:
    """What :func:`check_environment_size` counts a value filled in at deploy time as."""
    return ARN_PREFIX_BYTES + len(stack_name) + 1 + GENERATED_NAME_BYTES


#: Spoke accounts the monitor's role may name one by one (``aws:ResourceAccount``) in its policy: past
#: this many, the role's inline policies near IAM's 10,240 characters, and ``spokeOrganizationId``
#: (``aws:ResourceOrgID``) says the same in one value (docs/deploy.md).
MAX_LISTED_SPOKE_ACCOUNTS: Final = 200
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: A REST API's id, as API Gateway makes them (the host name's first label).
_REST_API_ID = re.compile(r"^[a-z0-9]{10}$")

MIN_SCHEDULE_MINUTES = 5
MAX_SCHEDULE_MINUTES = 1440
MAX_FAST_SCHEDULE_MINUTES = 60
DEFAULT_TIMEOUT_SECONDS = 300
MIN_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 900  # Lambda's own limit
#: CloudWatch Logs retention periods (RetentionInDays of AWS::Logs::LogGroup), "never expire" excluded.
LOG_RETENTION_DAYS: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                             2192, 2557, 2922, 3288, 3653)  # fmt: skip
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RemovalPolicyName = Literal["retain", "destroy"]
REMOVAL_POLICIES: Final = ("retain", "destroy")
#: Where events go: the account's default bus, or a bus the stack creates.
EventBusChoice = Literal["default", "create"]
EVENT_BUS_CHOICES: Final = ("default", "create")

# Deliberately plain: SNS checks deliverability by asking for a confirmation; this catches typos
# such as a missing @ or domain, a space, or two addresses run together.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"  # local part
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"  # domain
)
_SLACK_WORKSPACE = re.compile(r"^T[A-Z0-9]{8,20}$")
#: Microsoft Teams team and tenant ids are GUIDs; a channel id is URL-encoded, as Teams' "Copy link"
#: gives it (``19%3a...%40thread.tacv2``). AWS::Chatbot::MicrosoftTeamsChannelConfiguration's patterns.
_GUID = re.compile(r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")
_TEAMS_CHANNEL = re.compile(r"^[a-zA-Z0-9\-_=+/.,]*%3[aA][a-zA-Z0-9\-_=+/.,]*%40[a-zA-Z0-9\-_=+/.,]*$")
#: Each route's topic ARN is in the function's environment (ALERT_ROUTES), and Lambda allows 4 KB of
#: environment in all: about 100 bytes a route, with room for the other variables.
MAX_ROUTES = 20
_SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{8,20}$")
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(?:mrk-[0-9a-f]{32}|[0-9a-f-]{36})$")


def _whole(name: str, value: object, *, low: int, high: int, unit: str, why: str = "") -> int:
    allowed = f"use a whole number of {unit} from {low} to {high}{why}"
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_setting(name, value, allowed)
    return value


@dataclass(frozen=True, kw_only=True)
class SlackChannel:
    """An AWS Chatbot (Amazon Q Developer in chat applications) Slack channel fed by the alert topic.

    The workspace must have been authorised once in the AWS Chatbot console; the ids are in Slack
    (workspace: ``T...``; channel: ``C...``, or ``G...`` for an old private channel).
    """

    workspace_id: str
    channel_id: str
    #: Prefixed to the setting names in messages: ``alertRoutes.gold.`` for a route's channel.
    setting_prefix: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        prefix = self.setting_prefix
        if not _SLACK_WORKSPACE.match(self.workspace_id):
            raise bad_setting(
                f"{prefix}slackWorkspaceId",
                self.workspace_id,
                "use the Slack workspace id that AWS Chatbot shows: 'T' and 8 to 20 capital letters "
                "or digits",
            )
        if not _SLACK_CHANNEL.match(self.channel_id):
            raise bad_setting(
                f"{prefix}slackChannelId",
                self.channel_id,
                "use a Slack channel id, 'C' (or 'G') and 8 to 20 capital letters or digits "
                "(channel details in Slack, at the bottom); not the channel's name",
            )


@dataclass(frozen=True, kw_only=True)
class TeamsChannel:
    """An AWS Chatbot Microsoft Teams channel fed by an alert topic.

    The team must have been authorised once in the AWS Chatbot console, which shows the team and
    tenant ids (GUIDs). The channel id is in the channel's link (Teams, "Copy link"), URL-encoded:
    ``19%3a...%40thread.tacv2``; given as Teams shows it decoded (``19:...@thread.tacv2``) it is
    encoded here.
    """

    team_id: str
    channel_id: str
    tenant_id: str
    setting_prefix: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        prefix = self.setting_prefix
        guid = "a GUID as the AWS Chatbot console shows it, such as 1234abcd-12ab-34cd-56ef-1234567890ab"
        if not _GUID.match(self.team_id):
            raise bad_setting(
                f"{prefix}teamsTeamId", self.team_id, f"use the Microsoft Teams team id: {guid}"
            )
        if not _GUID.match(self.tenant_id):
            raise bad_setting(
                f"{prefix}teamsTenantId", self.tenant_id, f"use the Microsoft Teams tenant id: {guid}"
            )
        # One spelling for one channel (encoded, escapes in lower case, as AWS's examples write it), so
        # that the same channel given two ways is recognised as one.
        given = self.channel_id
        canonical = urllib.parse.quote(urllib.parse.unquote(given), safe="-_=+/.,")
        object.__setattr__(self, "channel_id", re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), canonical))
        if not _TEAMS_CHANNEL.match(self.channel_id) or len(self.channel_id) > 256:
            raise bad_setting(
                f"{prefix}teamsChannelId",
                given,
                "use the channel id from the channel's link in Teams, such as "
                "19%3ab6ef35dc342d4cd2a6c0c5b3e3a4b5c6%40thread.tacv2 (or 19:...@thread.tacv2)",
            )


def check_emails(name: str, emails: tuple[str, ...]) -> None:
    for email in emails:
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise bad_setting(name, email, "use email addresses such as ops@example.com, separated by commas")
    if len(set(emails)) != len(emails):
        raise bad_setting(name, ",".join(emails), "list each address once")


@dataclass(frozen=True, kw_only=True)
class AlertRoute:
    """A route (``quota-monitor:route`` = ``name`` on a plan or key): its own topic, under the stack's
    key, with its own email subscriptions and, optionally, its own chat channels."""

    name: str
    emails: tuple[str, ...] = ()
    slack_channel: SlackChannel | None = None
    teams_channel: TeamsChannel | None = None

    def __post_init__(self) -> None:
        problem = route_name_problem(self.name) if isinstance(self.name, str) else "use a string"
        if problem is not None:
            raise bad_setting("alertRoutes", self.name, f"a route's name: {problem}")
        check_emails(f"alertRoutes.{self.name}.emails", self.emails)

    @property
    def setting(self) -> str:
        """How its settings are named in messages: ``alertRoutes.<name>``."""
        return f"alertRoutes.{self.name}"


@dataclass(frozen=True, kw_only=True)
class SlackWebhook:
    """The Slack incoming-webhook forwarder. Its URL lives in a Secrets Manager secret, never here.

    ``secret_arn=None`` creates the secret (with a placeholder the user replaces); otherwise the
    complete ARN of an existing secret, and ``secret_key_arn`` when that secret is encrypted with a
    customer managed KMS key.
    """

    secret_arn: str | None = None
    secret_key_arn: str | None = None

    def __post_init__(self) -> None:
        if self.secret_arn is not None and not _SECRET_ARN.match(self.secret_arn):
            raise bad_setting(
                "slackWebhookSecret",
                self.secret_arn,
                "use 'create', or the complete ARN of an existing secret "
                "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)",
            )
        if self.secret_key_arn is not None:
            if self.secret_arn is None:
                raise bad_setting(
                    "slackWebhookSecretKeyArn",
                    self.secret_key_arn,
                    "set it only with slackWebhookSecret=<ARN of an existing secret>; "
                    "the secret this stack creates uses the AWS managed key",
                )
            if not _KMS_KEY_ARN.match(self.secret_key_arn):
                raise bad_setting(
                    "slackWebhookSecretKeyArn",
                    self.secret_key_arn,
                    "use a KMS key ARN, arn:<partition>:kms:<region>:<account>:key/<key id>",
                )


@dataclass(frozen=True, kw_only=True)
class MonitorSettings:
    """Everything :class:`infra.monitor.UsageQuotaMonitor` can be told. Checked on creation.

    ``runtime`` holds the monitor function's own settings by environment variable name (the keys
    of :data:`RUNTIME_SETTINGS`' values, such as ``{"THRESHOLDS": "70,90,100"}``); the runtime's
    parser checks them.
    """

    schedule_minutes: int = 15
    #: The fast path (docs/alerts.md, "Two paths"): a second schedule every this many minutes reads
    #: the full scan's hot plans; 0 turns it off.
    fast_schedule_minutes: int = 1
    #: The fast path function's memory: its work is small (the watched plans), its time mostly waits.
    fast_memory_mb: int = 128
    timeout_seconds: int | None = None
    memory_mb: int = 256
    reserved_concurrency: bool = True
    tracing: bool = False
    #: The function's log group holds the records (a line per key per run) the dashboard reads: two
    #: weeks keep two WEEK periods of them for a look back, and cap what an "all time" query can scan
    #: (about 5.2 GB at 10,000 keys); the dashboard itself reads only the last run (docs/cost.md).
    log_retention_days: int = 14
    log_level: str = "INFO"
    removal_policy: RemovalPolicyName = "retain"
    alert_emails: tuple[str, ...] = ()
    slack_channel: SlackChannel | None = None
    teams_channel: TeamsChannel | None = None
    slack_webhook: SlackWebhook | None = None
    alert_routes: tuple[AlertRoute, ...] = ()
    #: EventBridge: an event per notification on the default bus or a bus of the stack's own.
    event_bus: EventBusChoice | None = None
    #: An example rule that sends the events to an encrypted SQS queue (needs ``event_bus``).
    events_to_queue: bool = False
    #: Other accounts to scan, each through its spoke role (:mod:`infra.spoke`), named ``spoke_role_name``.
    spoke_accounts: tuple[str, ...] = ()
    spoke_role_name: str = DEFAULT_SPOKE_ROLE_NAME
    #: The AWS Organization of the spoke accounts: the monitor may assume ``spoke_role_name`` in its
    #: accounts only (``aws:ResourceOrgID``); without it, in ``spoke_accounts`` only.
    spoke_organization_id: str | None = None
    #: ``GET /quota``'s function, and every key's numbers kept for it (``KEY_SNAPSHOTS``).
    quota_endpoint: bool = False
    #: The REST APIs that may invoke it (their GET routes); none: any REST API of the account.
    quota_endpoint_api_ids: tuple[str, ...] = ()
    #: The usage archive (:class:`infra.archive.UsageArchive`): a bucket of the stack's (``archive``) or
    #: an existing one (``archive_bucket_name``), with Athena over it.
    archive: bool = False
    archive_bucket_name: str | None = None
    archive_cold_after_days: int = 90
    archive_retention_days: int = 800
    runtime: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _whole(
            "scheduleMinutes",
            self.schedule_minutes,
            low=MIN_SCHEDULE_MINUTES,
            high=MAX_SCHEDULE_MINUTES,
            unit="minutes",
            why=" (GetUsage data lags real traffic by minutes, and a scan of many plans takes a minute "
            "at the default rate limit)",
        )
        _whole(
            "fastScheduleMinutes",
            self.fast_schedule_minutes,
            low=0,
            high=min(MAX_FAST_SCHEDULE_MINUTES, self.schedule_minutes - 1),
            unit="minutes",
            why=f" (0 turns the fast path off), fewer than the full scan's scheduleMinutes="
            f"{self.schedule_minutes}",
        )
        _whole("fastMemoryMb", self.fast_memory_mb, low=128, high=10240, unit="MB")
        if self.timeout_seconds is not None:
            _whole(
                "timeoutSeconds",
                self.timeout_seconds,
                low=MIN_TIMEOUT_SECONDS,
                high=min(MAX_TIMEOUT_SECONDS, self.schedule_minutes * 60 - 1),
                unit="seconds",
                why=f", shorter than the schedule interval (scheduleMinutes={self.schedule_minutes}) so that "
                "one run ends before the next one starts",
            )
        _whole("memoryMb", self.memory_mb, low=128, high=10240, unit="MB")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise bad_setting(
                "logRetentionDays",
                self.log_retention_days,
                f"use one of CloudWatch Logs' retention periods: {', '.join(map(str, LOG_RETENTION_DAYS))}",
            )
        if self.log_level not in LOG_LEVELS:
            raise bad_setting("logLevel", self.log_level, f"use one of {', '.join(LOG_LEVELS)}")
        if self.removal_policy not in REMOVAL_POLICIES:
            raise bad_setting(
                "removalPolicy",
                self.removal_policy,
                "use 'retain' (keep the alert state, key and logs when the stack is deleted) or 'destroy'",
            )
        self._check_events()
        check_spoke_accounts(self.spoke_accounts)
        check_role_name("spokeRoleName", self.spoke_role_name)
        self._check_organization()
        self._check_archive()
        self._check_quota_endpoint()
        for flag in ("reserved_concurrency", "tracing", "events_to_queue", "quota_endpoint", "archive"):
            if not isinstance(getattr(self, flag), bool):
                raise bad_setting(_camel(flag), getattr(self, flag), "use true or false")
        check_emails("alertEmails", self.alert_emails)
        names = [route.name for route in self.alert_routes]
        if len(set(names)) != len(names):
            raise bad_setting("alertRoutes", ",".join(names), "name each route once")
        if len(names) > MAX_ROUTES:
            raise bad_setting(
                "alertRoutes",
                ",".join(names),
                f"use at most {MAX_ROUTES} routes: each topic ARN is in the function's environment "
                "(ALERT_ROUTES), which Lambda limits to 4 KB",
            )
        for variable, value in self.runtime.items():
            if variable not in _CONTEXT_KEY_OF:
                raise bad_setting(
                    "runtime",
                    variable,
                    f"use one of the monitor's variables {', '.join(sorted(_CONTEXT_KEY_OF))}; the stack "
                    "sets the others (ALERT_TOPIC_ARN, ALERT_TABLE_NAME, POWERTOOLS_*) itself",
                )
            if not isinstance(value, str):
                raise bad_setting(_CONTEXT_KEY_OF[variable], value, "use a string, as in an environment")
        # The function always runs with alerts on: check the runtime settings as it will see them.
        check_runtime_environment(
            {**DEPLOY_TIME_EXAMPLES, **self.runtime, **self.fast_environment(), **self.deploy_time_examples()}
        )

    def _check_events(self) -> None:
        if self.event_bus is not None and self.event_bus not in EVENT_BUS_CHOICES:
            raise bad_setting(
                "eventBus",
                self.event_bus,
                "use 'default' (the account's default bus) or 'create' (a bus of the stack's own)",
            )
        if self.events_to_queue is True and self.event_bus is None:
            raise bad_setting("eventsToQueue", True, "set eventBus too: the rule reads the events from it")

    def _check_archive(self) -> None:
        name = self.archive_bucket_name
        if name is not None and (not _BUCKET.match(name) or ".." in name):
            raise bad_setting(
                "archiveBucketName",
                name,
                "use an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-'",
            )
        _whole(
            "archiveColdAfterDays",
            self.archive_cold_after_days,
            low=1,
            high=3650,
            unit="days",
        )
        _whole(
            "archiveRetentionDays",
            self.archive_retention_days,
            low=self.archive_cold_after_days + 90,
            high=36500,
            unit="days",
            why=f", at least 90 days after archiveColdAfterDays={self.archive_cold_after_days} (Glacier "
            "Instant Retrieval bills 90 days at least)",
        )

    def _check_quota_endpoint(self) -> None:
        ids = self.quota_endpoint_api_ids
        for api_id in ids:
            if not isinstance(api_id, str) or not _REST_API_ID.match(api_id):
                raise bad_setting(
                    "quotaEndpointApiIds",
                    api_id,
                    "use REST API ids (10 lowercase letters and digits, as in "
                    "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com), separated by commas",
                )
        if len(set(ids)) != len(ids):
            raise bad_setting("quotaEndpointApiIds", ",".join(ids), "list each API once")
        if ids and self.quota_endpoint is not True:
            raise bad_setting(
                "quotaEndpointApiIds", ",".join(ids), "set quotaEndpoint=true too: it names who may call it"
            )

    @property
    def archived(self) -> bool:
        return self.archive or self.archive_bucket_name is not None

    def _check_organization(self) -> None:
        organization = self.spoke_organization_id
        if organization is not None and not _ORGANIZATION_ID.match(organization):
            raise bad_setting(
                "spokeOrganizationId", organization, "use the organization's id, such as o-a1b2c3d4e5"
            )
        if organization is None and len(self.spoke_accounts) > MAX_LISTED_SPOKE_ACCOUNTS:
            raise bad_setting(
                "spokeOrganizationId",
                None,
                f"set it with more than {MAX_LISTED_SPOKE_ACCOUNTS} spokeAccounts "
                f"({len(self.spoke_accounts)}): the monitor's role names the accounts it may assume a "
                "role in one by one up to that many, and IAM allows 10,240 characters of inline policy "
                "a role; with the organization's id "
                "(aws:ResourceOrgID) it names them all at once",
            )

    def deploy_time_examples(self) -> dict[str, str]:
        """Stand-ins for the variables made of deploy-time values that these settings add."""
        examples: dict[str, str] = {}
        if self.alert_routes:
            topic = DEPLOY_TIME_EXAMPLES["ALERT_TOPIC_ARN"]
            routes = {route.name: f"{topic}-{route.name}" for route in self.alert_routes}
            examples["ALERT_ROUTES"] = json.dumps(routes)
        if self.event_bus is not None:
            examples["EVENT_BUS_NAME"] = "default" if self.event_bus == "default" else "quota-events"
        if self.spoke_accounts:
            examples.update(self.spoke_environment("ApiGatewayQuotaMonitor"))
        return examples

    def spoke_environment(self, stack_name: str) -> dict[str, str]:
        """Where the functions find the spoke accounts (SSM parameters the stack writes:
        :data:`SPOKE_ACCOUNTS_PER_PARAMETER` a parameter) and the role they assume in each."""
        if not self.spoke_accounts:
            return {}
        return {
            "SPOKE_ACCOUNTS_PARAMETER": spoke_accounts_path(stack_name),
            "SPOKE_ROLE_NAME": self.spoke_role_name,
        }

    @property
    def regions(self) -> tuple[str, ...]:
        """``REGIONS`` as set (empty: the stack's own region), checked by the runtime's parser."""
        raw = self.runtime.get("REGIONS")
        return tuple(region.strip() for region in raw.split(",")) if raw else ()

    @property
    def fast_path(self) -> bool:
        return self.fast_schedule_minutes > 0

    @property
    def fast_timeout(self) -> int:
        """The fast function's timeout in seconds: its interval less 5 s, so that a run is over before
        the next is due (the lease keeps two apart anyway)."""
        return min(MAX_TIMEOUT_SECONDS, self.fast_schedule_minutes * 60 - 5)

    def fast_environment(self) -> dict[str, str]:
        """The variables that turn the fast path on, in both functions (the runtime checks them)."""
        if not self.fast_path:
            return {}
        return {
            "FAST_SCHEDULE_MINUTES": str(self.fast_schedule_minutes),
            "SCHEDULE_MINUTES": str(self.schedule_minutes),
        }

    @property
    def timeout(self) -> int:
        """The function's timeout in seconds: as set, or 300 s, at most a minute under the interval."""
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        return min(DEFAULT_TIMEOUT_SECONDS, self.schedule_minutes * 60 - 60)


#: Account ids in one SSM parameter: 13 characters each with its comma, within a standard parameter's 4 KB.
SPOKE_ACCOUNTS_PER_PARAMETER: Final = 300


def spoke_accounts_path(stack_name: str) -> str:
    """The SSM parameter path under which the stack lists the spoke accounts."""
    return f"/{stack_name}/spoke-accounts"


def check_environment_size(
    environment: Mapping[str, str], *, stack_name: str, deploy_time: Mapping[str, str] | None = None
) -> int:
    """The bytes of a function's environment (names and values; a value filled in at deploy time
    counted as ``deploy_time`` gives it, or :func:`deploy_time_value_bytes`); refuses one over
    Lambda's 4 KB, naming the settings behind its largest variables."""
    deploy_time = deploy_time or {}
    generated = deploy_time_value_bytes(stack_name)
    sizes = {
        name: len(name.encode())
        + (
            len(deploy_time[name].encode())
            if name in deploy_time and Token.is_unresolved(value)
            else generated
            if Token.is_unresolved(value)
            else len(value.encode())
        )
        for name, value in environment.items()
    }
    total = sum(sizes.values())
    if total > MAX_ENVIRONMENT_BYTES:
        largest = sorted(sizes, key=lambda name: -sizes[name])[:3]
        named = ", ".join(
            f"{_CONTEXT_KEY_OF.get(name) or _STACK_OWNED.get(name) or name} ({sizes[name]:,} bytes)"
            for name in largest
        )
        raise SettingError(
            f"the monitor functions' environment would hold {total:,} bytes, over Lambda's "
            f"{MAX_ENVIRONMENT_BYTES:,} (all variables together): shorten what sets the largest, {named}"
        )
    return total


_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_ORGANIZATIONAL_UNIT = re.compile(r"^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")


def check_spoke_accounts(accounts: Sequence[str], name: str = "spokeAccounts") -> None:
    for account in accounts:
        if not isinstance(account, str) or not _ACCOUNT_ID.match(account):
            raise bad_setting(name, account, "use 12-digit AWS account ids, separated by commas")
    if len(set(accounts)) != len(accounts):
        raise bad_setting(name, ",".join(accounts), "list each account once")


def check_role_name(name: str, value: str) -> None:
    if not isinstance(value, str) or not _ROLE_NAME.match(value):
        raise bad_setting(name, value, "use an IAM role name: 1 to 64 letters, digits and + = , . @ _ -")


def check_organizational_units(units: Sequence[str], name: str = "spokeOrganizationalUnits") -> None:
    for unit in units:
        if not isinstance(unit, str) or not _ORGANIZATIONAL_UNIT.match(unit):
            raise bad_setting(
                name, unit, "use organizational unit ids such as ou-ab12-34cd56ef, separated by commas"
            )
    if len(set(units)) != len(units):
        raise bad_setting(name, ",".join(units), "list each organizational unit once")


def check_role_arn(name: str, value: str) -> str:
    if not isinstance(value, str) or not _ROLE_ARN.match(value):
        raise bad_setting(
            name, value, "use the hub's MonitorRoleArn output: arn:<partition>:iam::<account>:role/<name>"
        )
    return value


def check_runtime_environment(
    environment: Mapping[str, str], examples: Mapping[str, str] | None = None
) -> Settings:
    """The monitor function's settings parsed from ``environment`` exactly as the function will at
    cold start; values only known at deploy time (tokens) are replaced with examples first
    (:data:`DEPLOY_TIME_EXAMPLES`, and ``examples``).

    Raises :class:`SettingError` naming the deployment setting behind a refused variable.
    """
    stand_ins = {**DEPLOY_TIME_EXAMPLES, **(examples or {})}
    probe = {
        name: stand_ins.get(name, "") if Token.is_unresolved(value) else value
        for name, value in environment.items()
    }
    try:
        return Settings.from_env(probe)
    except ConfigError as error:
        message = str(error)
        variable = message.split("=", 1)[0]
        key = _CONTEXT_KEY_OF.get(variable) or _STACK_OWNED.get(variable)
        raise SettingError(f"{key}: {message}" if key else f"runtime settings: {message}") from None


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)
