"""Where a key's alerts go: a route by tag, each route an SNS topic of its own.

- A usage plan or API key tagged ``quota-monitor:route`` = ``<name>`` has its alerts delivered to
  that route's topic (``ALERT_ROUTES`` maps route names to topic ARNs). A key's tag beats its plan's.
- A key with no route tag (on itself or its plan) goes to the default topic, ``ALERT_TOPIC_ARN``.
  The value ``default`` names that topic on purpose: a key of a routed plan can come back to it.
- A route that ``ALERT_ROUTES`` does not know (a typo, or a route removed from the deployment) goes
  to the default topic, with a :class:`~quota_monitor.models.TagProblem` naming the resource, the
  tag and the value: an alert is never dropped for a bad tag, and the people on the default topic
  (who own the deployment) see it.

Routing is a pure function of the tags and the routes; it never touches the alert state, which is
per key: a key whose route changes in the middle of a period is not alerted again, and its next
notification goes to its new route.

Route names are 1 to 40 letters, digits, ``-`` and ``_``: characters every AWS tag value allows
(docs/aws-behaviour.md#tags), and that can be part of an AWS Chatbot configuration name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from quota_monitor.models import TagProblem

if TYPE_CHECKING:
    from collections.abc import Mapping

    from quota_monitor.models import ApiKey, UsagePlan

TAG_ROUTE = "quota-monitor:route"
#: The route of keys without a route tag: ``ALERT_TOPIC_ARN``. Reserved: no route may be called so.
DEFAULT_ROUTE = "default"
MAX_ROUTE_NAME = 40
ROUTE_NAME_ALLOWED = (
    f"use 1 to {MAX_ROUTE_NAME} letters, digits, '-' and '_', starting with a letter or a digit"
)
_ROUTE_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_ROUTE_NAME - 1}}}$")

#: What a route tag that names no route leads to.
UNKNOWN_FALLBACK = "the key's alerts go to the default topic (ALERT_TOPIC_ARN)"

RouteSource = Literal["key tag", "plan tag", "default"]


def route_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a route's name (configured in ``ALERT_ROUTES``), or None when it can."""
    if name == DEFAULT_ROUTE:
        return f"{DEFAULT_ROUTE!r} is the name of ALERT_TOPIC_ARN's route; choose another name"
    if not _ROUTE_NAME.match(name):
        return ROUTE_NAME_ALLOWED
    return None


@dataclass(frozen=True)
class Route:
    """The route one key's alerts take: its name, its topic, which tag chose it, and any bad tag."""

    name: str
    topic_arn: str
    source: RouteSource = "default"
    problems: tuple[TagProblem, ...] = ()


def route_for(
    plan: UsagePlan, key: ApiKey | None, routes: Mapping[str, str], default_topic_arn: str
) -> Route:
    """The route for one key of one plan: the key's tag if it has one, else the plan's, else the default."""
    layers: list[tuple[RouteSource, Mapping[str, str], Literal["usage plan", "API key"], str]] = []
    if key is not None:
        layers.append(("key tag", key.tags, "API key", key.id))
    layers.append(("plan tag", plan.tags, "usage plan", plan.id))
    for source, tags, resource, resource_id in layers:
        if TAG_ROUTE not in tags:
            continue
        raw = tags[TAG_ROUTE]
        name = raw.strip()
        if name == DEFAULT_ROUTE:
            return Route(DEFAULT_ROUTE, default_topic_arn, source)
        if name in routes:
            return Route(name, routes[name], source)
        problem = TagProblem(resource, resource_id, TAG_ROUTE, raw, _unknown(name, routes), UNKNOWN_FALLBACK)
        return Route(DEFAULT_ROUTE, default_topic_arn, source, (problem,))
    return Route(DEFAULT_ROUTE, default_topic_arn)


def _unknown(name: str, routes: Mapping[str, str]) -> str:
    known = sorted(routes)
    near = difflib.get_close_matches(name, known, n=1) or [r for r in known if r.lower() == name.lower()]
    hint = f"; did you mean {near[0]!r}?" if near else ""
    listed = ", ".join(known) if known else "none"
    what = "an empty route name" if not name else f"no route named {name!r}"
    return f"{what}; routes: {listed}, or {DEFAULT_ROUTE}{hint}"
