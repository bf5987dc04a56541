"""Deployment settings from CDK context: ``cdk.json``'s ``context``, overridden by ``-c key=value``.

Values from ``cdk.json`` arrive typed (numbers, booleans, lists); values from ``-c`` arrive as
strings. Both are accepted. An empty value means "not set" (so ``-c slackWebhookSecret=`` turns
off what ``cdk.json`` turned on). An unknown key is an error, so a typo does not silently deploy
the default.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from infra.settings import (
    LOG_LEVELS,
    RUNTIME_SETTINGS,
    AlertRoute,
    MonitorSettings,
    RemovalPolicyName,
    SettingError,
    SlackChannel,
    SlackWebhook,
    TeamsChannel,
    bad_setting,
    check_organizational_units,
    check_role_arn,
    check_runtime_environment,
)
from infra.spoke import SpokeSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_STACK_NAME = "ApiGatewayQuotaMonitor"
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")

INFRA_SETTINGS: Final = (
    "stackName",
    "scheduleMinutes",
    "fastScheduleMinutes",
    "fastMemoryMb",
    "timeoutSeconds",
    "memoryMb",
    "reservedConcurrency",
    "tracing",
    "logRetentionDays",
    "logLevel",
    "removalPolicy",
    "alertEmails",
    "slackWorkspaceId",
    "slackChannelId",
    "teamsTeamId",
    "teamsChannelId",
    "teamsTenantId",
    "slackWebhookSecret",
    "slackWebhookSecretKeyArn",
    "alertRoutes",
    "eventBus",
    "eventsToQueue",
    "spokeAccounts",
    "spokeRoleName",
    "spokeOrganizationalUnits",
    "spokeOrganizationId",
    "spokeStackSetCallAs",
    "hubRoleArn",
    "quotaEndpoint",
    "quotaEndpointApiIds",
    "archive",
    "archiveBucketName",
    "archiveColdAfterDays",
    "archiveRetentionDays",
)
#: Who deploys the StackSet (CloudFormation's CreateStackSet, CallAs): the organization's management
#: account (SELF) or a delegated administrator registered for StackSets (DELEGATED_ADMIN).
STACK_SET_CALL_AS: Final = ("SELF", "DELEGATED_ADMIN")
#: What the StackSet's name adds to the stack name (``<stackName>SpokeStackSet-roles``), and the most
#: CloudFormation allows a StackSet's name.
STACK_SET_SUFFIX: Final = "SpokeStackSet-roles"
MAX_STACK_SET_NAME: Final = 128
#: What a route of ``alertRoutes`` may say.
ROUTE_FIELDS: Final = (
    "emails",
    "slackWorkspaceId",
    "slackChannelId",
    "teamsTeamId",
    "teamsChannelId",
    "teamsTenantId",
)
TEAMS_FIELDS: Final = ("teamsTeamId", "teamsChannelId", "teamsTenantId")
ROUTES_EXAMPLE: Final = (
    '{"gold": {"emails": ["gold-team@example.com"], "slackWorkspaceId": "T0123ABCD45", '
    '"slackChannelId": "C0123ABCD45"}}'
)
KNOWN_SETTINGS: Final = frozenset(INFRA_SETTINGS) | frozenset(RUNTIME_SETTINGS)
#: Context the CDK itself keeps in cdk.json, besides feature flags ("@aws-cdk/...") and lookups
#: ("availability-zones:...").
_CDK_KEYS: Final = frozenset({"acknowledged-issue-numbers", "cli-telemetry", "cdk-version"})


@dataclass(frozen=True, kw_only=True)
class SpokeDeployment:
    """The spoke role's stacks: on its own (deployed in each spoke account) and, with organizational
    units, as a StackSet (deployed in the organization's management account)."""

    settings: SpokeSettings
    organizational_units: tuple[str, ...] = ()
    call_as: str = "SELF"


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    stack_name: str = DEFAULT_STACK_NAME
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    #: The spoke role's stacks, when ``hubRoleArn`` is set.
    spokes: SpokeDeployment | None = None


def _is_ours(key: str) -> bool:
    return not (key.startswith("@") or ":" in key or key in _CDK_KEYS)


def _set(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value.strip() == "")


def _number(value: Any) -> Any:
    """A whole number given as text becomes an int; anything else is left for
    :class:`MonitorSettings` to refuse with the range it allows."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_setting(name, value, "use true or false")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_setting(name, value, "use a string")
    return value.strip()


def _list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise bad_setting(name, value, "use a list of strings, or one string with commas between items")
    return tuple(item.strip() for item in items if item.strip())


def _some(name: str, value: Any) -> tuple[str, ...]:
    """A list that must name something: empty, ``quotaEndpointApiIds`` would read as "any API"."""
    items = _list(name, value)
    if not items:
        raise bad_setting(name, value, "name one or more, or leave the setting out")
    return items


def _runtime_value(value: Any) -> str:
    """How a context value reads as an environment variable; the runtime parses it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value).strip()


def _removal_policy(value: Any) -> RemovalPolicyName:
    text = _text("removalPolicy", value).lower()
    if text == "retain":
        return "retain"
    if text == "destroy":
        return "destroy"
    raise bad_setting(
        "removalPolicy",
        value,
        "use 'retain' (keep the alert state, key and logs when the stack is deleted) or 'destroy'",
    )


def _slack_channel(context: Mapping[str, Any], prefix: str = "") -> SlackChannel | None:
    workspace, channel = context.get("slackWorkspaceId"), context.get("slackChannelId")
    if not _set(workspace) and not _set(channel):
        return None
    if not _set(workspace):
        raise bad_setting(
            f"{prefix}slackWorkspaceId",
            workspace,
            f"set it too: {prefix}slackChannelId={channel!r} needs the workspace",
        )
    if not _set(channel):
        raise bad_setting(
            f"{prefix}slackChannelId",
            channel,
            f"set it too: {prefix}slackWorkspaceId={workspace!r} needs a channel",
        )
    return SlackChannel(
        workspace_id=_text(f"{prefix}slackWorkspaceId", workspace),
        channel_id=_text(f"{prefix}slackChannelId", channel),
        setting_prefix=prefix,
    )


def _teams_channel(context: Mapping[str, Any], prefix: str = "") -> TeamsChannel | None:
    given = {name: context.get(name) for name in TEAMS_FIELDS if _set(context.get(name))}
    if not given:
        return None
    missing = [name for name in TEAMS_FIELDS if name not in given]
    if missing:
        first = next(iter(given))
        raise bad_setting(
            f"{prefix}{missing[0]}",
            None,
            f"set it too: Microsoft Teams needs {', '.join(prefix + name for name in TEAMS_FIELDS)} "
            f"({prefix}{first} is set)",
        )
    return TeamsChannel(
        team_id=_text(f"{prefix}teamsTeamId", given["teamsTeamId"]),
        channel_id=_text(f"{prefix}teamsChannelId", given["teamsChannelId"]),
        tenant_id=_text(f"{prefix}teamsTenantId", given["teamsTenantId"]),
        setting_prefix=prefix,
    )


def _alert_routes(value: Any) -> tuple[AlertRoute, ...]:
    """``alertRoutes``: a JSON object (a string on the command line, an object in cdk.json) of routes."""
    routes = value
    if isinstance(value, str):
        try:
            routes = json.loads(value)
        except ValueError:
            raise bad_setting(
                "alertRoutes", value, f"it is not JSON; use an object such as {ROUTES_EXAMPLE}"
            ) from None
    if not isinstance(routes, dict):
        raise bad_setting("alertRoutes", value, f"use a JSON object of routes, such as {ROUTES_EXAMPLE}")
    built = []
    for name, fields in routes.items():
        AlertRoute(name=name)  # the name first: the messages below name the route
        prefix = f"alertRoutes.{name}."
        if not isinstance(fields, dict):
            raise bad_setting(
                f"alertRoutes.{name}", fields, f"use an object with some of {', '.join(ROUTE_FIELDS)}"
            )
        for field_name in fields:
            if field_name not in ROUTE_FIELDS:
                near = difflib.get_close_matches(field_name, ROUTE_FIELDS, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise bad_setting(
                    f"{prefix}{field_name}",
                    fields[field_name],
                    f"{hint}a route may set {', '.join(ROUTE_FIELDS)}",
                )
        given = {key: item for key, item in fields.items() if _set(item)}
        built.append(
            AlertRoute(
                name=name,
                emails=_list(f"{prefix}emails", given["emails"]) if "emails" in given else (),
                slack_channel=_slack_channel(given, prefix),
                teams_channel=_teams_channel(given, prefix),
            )
        )
    return tuple(built)


def _slack_webhook(context: Mapping[str, Any]) -> SlackWebhook | None:
    secret, key = context.get("slackWebhookSecret"), context.get("slackWebhookSecretKeyArn")
    if not _set(secret):
        if _set(key):
            raise bad_setting(
                "slackWebhookSecretKeyArn", key, "set it only with slackWebhookSecret=<ARN of a secret>"
            )
        return None
    text = _text("slackWebhookSecret", secret)
    return SlackWebhook(
        secret_arn=None if text == "create" else text,
        secret_key_arn=_text("slackWebhookSecretKeyArn", key) if _set(key) else None,
    )


def settings_from_context(context: Mapping[str, Any]) -> AppSettings:
    """The deployment's settings from CDK context, every one checked (:class:`SettingError`)."""
    for key in context:
        if _is_ours(key) and key not in KNOWN_SETTINGS:
            near = difflib.get_close_matches(key, sorted(KNOWN_SETTINGS), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            known = ", ".join(sorted(KNOWN_SETTINGS))
            raise SettingError(f"{key!r} is not a setting of this app: {hint}known settings are {known}")
    given = {key: value for key, value in context.items() if key in KNOWN_SETTINGS and _set(value)}
    stack_name = _text("stackName", given.get("stackName", DEFAULT_STACK_NAME))
    if not _STACK_NAME.match(stack_name):
        raise bad_setting(
            "stackName", stack_name, "use 1 to 128 letters, digits and hyphens, starting with a letter"
        )
    monitor = MonitorSettings(**_monitor_options(given))
    spokes = _spokes(given, monitor)
    if spokes is not None and spokes.organizational_units:
        stack_set = f"{stack_name}{STACK_SET_SUFFIX}"
        if len(stack_set) > MAX_STACK_SET_NAME:
            raise bad_setting(
                "stackName",
                stack_name,
                f"use at most {MAX_STACK_SET_NAME - len(STACK_SET_SUFFIX)} characters with "
                f"spokeOrganizationalUnits: the StackSet's name {stack_set!r} would be {len(stack_set)} "
                f"characters, and CloudFormation allows {MAX_STACK_SET_NAME}",
            )
    return AppSettings(stack_name=stack_name, monitor=monitor, spokes=spokes)


def _monitor_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`MonitorSettings`' keyword arguments from the settings given (checked there)."""
    options: dict[str, Any] = {}
    for key in (
        "scheduleMinutes",
        "fastScheduleMinutes",
        "fastMemoryMb",
        "timeoutSeconds",
        "memoryMb",
        "logRetentionDays",
        "archiveColdAfterDays",
        "archiveRetentionDays",
    ):
        if key in given:
            options[_snake(key)] = _number(given[key])
    for key in ("reservedConcurrency", "tracing", "eventsToQueue", "quotaEndpoint", "archive"):
        if key in given:
            options[_snake(key)] = _bool(key, given[key])
    if "eventBus" in given:
        options["event_bus"] = _text("eventBus", given["eventBus"]).lower()
    if "logLevel" in given:
        level = _text("logLevel", given["logLevel"])
        # Any case; a level that is not one is refused as given.
        options["log_level"] = level.upper() if level.upper() in LOG_LEVELS else level
    if "removalPolicy" in given:
        options["removal_policy"] = _removal_policy(given["removalPolicy"])
    for key, parse in (("alertEmails", _list), ("spokeAccounts", _list), ("quotaEndpointApiIds", _some)):
        if key in given:
            options[_snake(key)] = parse(key, given[key])
    options["slack_channel"] = _slack_channel(given)
    options["teams_channel"] = _teams_channel(given)
    options["slack_webhook"] = _slack_webhook(given)
    if "alertRoutes" in given:
        options["alert_routes"] = _alert_routes(given["alertRoutes"])
    for key in ("spokeRoleName", "archiveBucketName", "spokeOrganizationId"):
        if key in given:
            options[_snake(key)] = _text(key, given[key])
    options["runtime"] = {
        variable: _runtime_value(given[key]) for key, variable in RUNTIME_SETTINGS.items() if key in given
    }
    return options


def _spokes(context: Mapping[str, Any], monitor: MonitorSettings) -> SpokeDeployment | None:
    """The spoke role stacks, when ``hubRoleArn`` says which hub role they trust."""
    units = (
        _list("spokeOrganizationalUnits", context["spokeOrganizationalUnits"])
        if "spokeOrganizationalUnits" in context
        else ()
    )
    if "hubRoleArn" not in context:
        if units:
            raise bad_setting(
                "hubRoleArn",
                None,
                "set it too: the StackSet's roles trust the hub role (its MonitorRoleArn output)",
            )
        return None
    hub_role_arn = check_role_arn("hubRoleArn", _text("hubRoleArn", context["hubRoleArn"]))
    check_organizational_units(units)
    call_as = _text("spokeStackSetCallAs", context.get("spokeStackSetCallAs", "SELF")).upper()
    if call_as not in STACK_SET_CALL_AS:
        raise bad_setting(
            "spokeStackSetCallAs",
            context["spokeStackSetCallAs"],
            "use SELF (deploying from the organization's management account) or DELEGATED_ADMIN (from "
            "an account registered as a delegated administrator for StackSets)",
        )
    if not monitor.regions:
        raise bad_setting(
            "regions",
            None,
            "set it too (as the hub has it, such as us-east-1,eu-west-1): the spoke role may read only "
            "the regions the hub scans",
        )
    return SpokeDeployment(
        settings=SpokeSettings(
            hub_role_arn=hub_role_arn,
            role_name=monitor.spoke_role_name,
            regions=monitor.regions,
            namespace=check_runtime_environment(monitor.runtime).namespace,
        ),
        organizational_units=units,
        call_as=call_as,
    )


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()
