"""Alert levels: the default, and overrides from tags on usage plans and API keys.

Owners of plans and keys set levels where they already work, with no redeploy:

- ``quota-monitor:thresholds`` = ``"50/75/95"`` (or ``"50 75 95"``): ascending whole percentages
  from 1 to 100, separated as every list tag of the monitor is (:func:`quota_monitor.compute.tags.tag_list`:
  ``/`` or spaces, which AWS's tag rules allow everywhere, or commas where AWS let them through);
- ``quota-monitor:mute`` = ``"true"`` (or ``"false"``, to unmute one key of a muted plan).

A key's tag beats its plan's tag, which beats the configured default. A tag that does not parse
is reported as a :class:`TagProblem` (the caller logs it as a warning) and the next level of
configuration applies: a bad tag never stops a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from quota_monitor.compute.tags import (
    LIST_SEPARATORS,
    TAG_MUTE,
    TAG_THRESHOLDS,
    TagValueError,
    tag_flag,
    tag_list,
)
from quota_monitor.errors import InvalidLevels
from quota_monitor.models import TagProblem

if TYPE_CHECKING:
    from collections.abc import Mapping

    from quota_monitor.models import ApiKey, ScanResult, UsagePlan

DEFAULT_LEVELS: tuple[int, ...] = (80, 90, 100)
#: For ``THRESHOLDS`` (an environment variable, a ``-c`` setting), where commas are the habit.
LEVELS_ALLOWED = "use ascending whole percentages from 1 to 100, such as 80,90,100 (or 80/90/100)"
#: For the tag, whose value AWS's tools refuse with a comma in it.
TAG_LEVELS_ALLOWED = (
    f"use ascending whole percentages from 1 to 100, separated by {LIST_SEPARATORS}, such as 50/75/95"
)

Source = Literal["key tag", "plan tag", "default"]


def parse_levels(text: str) -> tuple[int, ...]:
    """``"80/90/100"``, ``"80 90 100"`` or ``"80, 90,100"`` -> ``(80, 90, 100)``; anything else raises
    :class:`InvalidLevels`. The same text for the ``THRESHOLDS`` setting and the tag."""
    try:
        parts = tag_list(text)
    except TagValueError as error:
        raise InvalidLevels(str(error)) from None
    levels: list[int] = []
    for part in parts:
        if not part.isdecimal():
            raise InvalidLevels(f"{part!r} is not a whole number")
        value = int(part)
        if not 1 <= value <= 100:
            raise InvalidLevels(f"{value} is outside 1..100")
        if levels and value <= levels[-1]:
            raise InvalidLevels(f"{value} does not come after {levels[-1]}: levels must ascend")
        levels.append(value)
    return tuple(levels)


@dataclass(frozen=True)
class AlertPolicy:
    """The levels and mute state that apply to one key, and where each came from."""

    levels: tuple[int, ...]
    levels_from: Source
    muted: bool = False
    muted_from: Source = "default"
    problems: tuple[TagProblem, ...] = field(default=(), compare=False)


def _read_tag(
    tags: Mapping[str, str],
    tag: str,
    resource: Literal["usage plan", "API key"],
    resource_id: str,
    problems: list[TagProblem],
) -> tuple[int, ...] | bool | None:
    if tag not in tags:
        return None
    raw = tags[tag]
    try:
        return parse_levels(raw) if tag == TAG_THRESHOLDS else tag_flag(raw)
    except (InvalidLevels, TagValueError) as error:
        allowed = TAG_LEVELS_ALLOWED if tag == TAG_THRESHOLDS else "use true or false"
        problems.append(TagProblem(resource, resource_id, tag, raw, f"{error}; {allowed}"))
        return None


def policy_for(plan: UsagePlan, key: ApiKey | None, default_levels: tuple[int, ...]) -> AlertPolicy:
    """The policy for one key of one plan: key tag, then plan tag, then the default."""
    problems: list[TagProblem] = []
    layers: list[tuple[Source, Mapping[str, str], Literal["usage plan", "API key"], str]] = []
    if key is not None:
        layers.append(("key tag", key.tags, "API key", key.id))
    layers.append(("plan tag", plan.tags, "usage plan", plan.id))

    levels: tuple[int, ...] = default_levels
    levels_from: Source = "default"
    muted = False
    muted_from: Source = "default"
    found_levels = found_mute = False
    for source, tags, resource, resource_id in layers:
        if not found_levels:
            value = _read_tag(tags, TAG_THRESHOLDS, resource, resource_id, problems)
            if isinstance(value, tuple):
                levels, levels_from, found_levels = value, source, True
        if not found_mute:
            mute = _read_tag(tags, TAG_MUTE, resource, resource_id, problems)
            if isinstance(mute, bool):
                muted, muted_from, found_mute = mute, source, True
    return AlertPolicy(
        levels=levels,
        levels_from=levels_from,
        muted=muted,
        muted_from=muted_from,
        problems=tuple(problems),
    )


def key_levels(result: ScanResult, default_levels: tuple[int, ...]) -> dict[tuple[str, str], tuple[int, ...]]:
    """Each scanned key's alert levels by (usage plan id, API key id), tags resolved as
    :func:`policy_for` does. Problems with the tags are left to the alert step to report."""
    plans = {plan.id: plan for plan in result.plans}
    levels: dict[tuple[str, str], tuple[int, ...]] = {}
    for key in result.keys:
        plan = plans.get(key.usage_plan_id)
        pair = (key.usage_plan_id, key.api_key_id)
        levels[pair] = (
            default_levels
            if plan is None
            else policy_for(plan, result.api_keys.get(key.api_key_id), default_levels).levels
        )
    return levels
