"""Alert messages: one SNS publish with a body for each kind of subscriber.

Published with ``MessageStructure="json"``, so SNS hands each protocol its own body:

- ``email``: plain text written for a person;
- ``default`` (and so AWS Chatbot, "Amazon Q Developer in chat applications", which subscribes over
  HTTPS): Chatbot's custom notification format, version ``1.0``, source ``custom``;
- ``lambda`` and ``sqs``: the structured alert (:func:`structured`), for the Slack forwarder and
  for programs.

SNS subjects must be ASCII, without line breaks, under 100 characters; a message (all bodies
together) at most 256 KB. A digest names every key in every body; when it would not fit in one
message it is split into numbered parts.

Nothing here ever holds an API key's value: keys are named by name and id.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quota_monitor.compute.tags import TAG_MUTE, TAG_THRESHOLDS
from quota_monitor.deliver.console import console_url

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from quota_monitor.alert.rules import Notification
    from quota_monitor.models import KeyUsage

SCHEMA = "apigw-quota-monitor/alerts@1"
MAX_SUBJECT = 99
#: SNS takes 256 KiB a message; room is kept for the envelope.
MAX_MESSAGE_BYTES = 250_000
SIGNATURE = "-- apigw-quota-monitor"
_UNSAFE_SUBJECT = re.compile(r"[^\x20-\x7e]")


def key_region(key: KeyUsage, region: str) -> str:
    """The region the key is in: its target's, or ``region`` (the monitor's) for a key built by hand."""
    return key.target.region if key.target is not None else region


def percent(value: float | None) -> str:
    """Utilization for people: rounded down, so that 89.96% never reads as a level of 90% crossed."""
    if value is None:
        return "-"
    return f"{math.floor(value * 10) / 10:.1f}%"


def _whole_percent(value: float | None) -> str:
    return "-" if value is None else f"{math.floor(value)}%"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    hours = max(0, int(seconds // 3600))
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} day{'s' * (days != 1)} {hours} h"
    minutes = max(0, int(seconds // 60))
    return f"{hours} h" if hours else f"{minutes} min"


def key_label(key: KeyUsage) -> str:
    return key.api_key_name or key.api_key_id


def ascii_subject(text: str) -> str:
    """SNS's subject rules: ASCII, printable, no line breaks, under 100 characters."""
    clean = _UNSAFE_SUBJECT.sub("?", " ".join(text.split()))
    return clean if len(clean) <= MAX_SUBJECT else clean[: MAX_SUBJECT - 3] + "..."


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "~"


# -- one notification -----------------------------------------------------------------------------
def headline(note: Notification) -> str:
    """One line saying what happened, for subjects, titles and digest lines."""
    key, name = note.key, key_label(note.key)
    if note.kind == "threshold":
        return (
            f"{name} at {_whole_percent(key.utilization)} of {key.period} quota (plan {key.usage_plan_name})"
        )
    if note.kind == "forecast" and note.forecast is not None:
        return (
            f"{name} to run out of {key.period} quota by {note.forecast.exhausts_at:%b %d %H:%M} UTC "
            f"(plan {key.usage_plan_name})"
        )
    reason = note.reason or "recovered"
    return f"{name} recovered, {reason}: {key.period} quota (plan {key.usage_plan_name})"


def subject(note: Notification) -> str:
    key = note.key
    # Keep the plan visible: shorten the key name first.
    tail = f" (plan {_short(key.usage_plan_name, 24)})"
    name = _short(key_label(key), 40)
    if note.kind == "threshold":
        text = f"[quota] {name} at {_whole_percent(key.utilization)} of {key.period} quota{tail}"
    elif note.kind == "forecast" and note.forecast is not None:
        text = f"[quota] {name} to run out of {key.period} quota by {note.forecast.exhausts_at:%b %d}{tail}"
    else:
        text = f"[quota] {name} recovered: {note.reason or 'recovered'}{tail}"
    return ascii_subject(text)


def forecast_sentence(note: Notification) -> str | None:
    if note.forecast is None:
        return None
    fc = note.forecast
    return (
        f"at its average rate this period ({fc.requests_per_hour:,.0f} requests an hour) the quota runs out "
        f"{_when(fc.exhausts_at)}, {_duration(fc.ahead_of_reset.total_seconds())} before it resets"
    )


def facts(note: Notification, region: str) -> list[tuple[str, str]]:
    """The fields every alert carries, as (label, value) pairs."""
    key = note.key
    rows = [
        ("Usage plan", f"{key.usage_plan_name} ({key.usage_plan_id})"),
        ("API key", f"{key_label(key)} ({key.api_key_id})"),
    ]
    if key.target is not None and not key.target.home:
        rows.append(("Account", f"{key.target.account_id}, {key.target.region}"))
    if note.kind == "threshold":
        rows.append(("Level crossed", f"{note.level}% (levels {_levels(note)})"))
    elif note.kind == "recovered":
        was = f"{note.level}%" if note.level else "a forecast warning"
        rows.append(("Recovered", f"{note.reason}; had been alerted at {was}"))
    else:
        rows.append(("Levels", _levels(note)))
    rows += [
        ("Utilization", percent(key.utilization)),
        ("Used", f"{_count(key.used)} requests this period (limit {_count(key.limit)})"),
        ("Remaining", _count(key.remaining)),
        ("Period", f"{key.period} from {key.period_start:%Y-%m-%d}, resets {_when(key.resets_at)}"),
    ]
    sentence = forecast_sentence(note)
    if sentence:
        rows.append(("Forecast", sentence))
    link = console_url(key_region(key, region), key.usage_plan_id)
    if link is not None:  # no console link is known for the region's partition
        rows.append(("Console", link))
    return rows


def _levels(note: Notification) -> str:
    return f"{', '.join(str(level) for level in note.levels)} from the {note.levels_from}"


def email_body(note: Notification, region: str) -> str:
    key = note.key
    if note.kind == "threshold":
        opening = (
            f"API key {key_label(key)} has used {percent(key.utilization)} of its {key.period} quota "
            f"in usage plan {key.usage_plan_name}: it crossed the {note.level}% level."
        )
    elif note.kind == "forecast":
        opening = (
            f"API key {key_label(key)} is on course to run out of its {key.period} quota in usage plan "
            f"{key.usage_plan_name} before the quota resets."
        )
    else:
        opening = (
            f"API key {key_label(key)} in usage plan {key.usage_plan_name} has recovered: {note.reason}."
        )
    width = max(len(label) for label, _ in facts(note, region))
    lines = [opening, ""] + [f"  {label + ':':<{width + 1}} {value}" for label, value in facts(note, region)]
    lines += ["", _howto(), SIGNATURE]
    return "\n".join(lines)


def _howto() -> str:
    return (
        f"Change a key's levels with the tag {TAG_THRESHOLDS} (such as 50/75/95) on the key or its "
        f"usage plan; silence it with {TAG_MUTE}=true."
    )


def alert_json(note: Notification, region: str) -> dict[str, Any]:
    """One alert in the structured body: plain JSON, no key values."""
    key = note.key
    body: dict[str, Any] = {
        "id": note.event_id,
        "event": note.kind,
        "usagePlanId": key.usage_plan_id,
        "usagePlanName": key.usage_plan_name,
        "apiKeyId": key.api_key_id,
        "apiKeyName": key.api_key_name,
        "level": note.level,
        "levels": list(note.levels),
        "levelsFrom": note.levels_from,
        "utilization": key.utilization,
        "used": key.used,
        "remaining": key.remaining,
        "limit": key.limit,
        "period": key.period,
        "periodStart": key.period_start.isoformat(),
        "resetsAt": key.resets_at.isoformat(),
        "consoleUrl": console_url(key_region(key, region), key.usage_plan_id),
        "accountId": key.target.account_id if key.target is not None else None,
        "region": key_region(key, region),
        "forecast": None,
        "reason": note.reason,
    }
    if note.forecast is not None:
        body["forecast"] = {
            "exhaustsAt": note.forecast.exhausts_at.isoformat(),
            "requestsPerHour": round(note.forecast.requests_per_hour, 3),
            "secondsBeforeReset": int(note.forecast.ahead_of_reset.total_seconds()),
        }
    return body


def structured(
    notes: Sequence[Notification], *, region: str, now: datetime, digest: bool, part: int = 1, parts: int = 1
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "digest": digest,
        "part": part,
        "parts": parts,
        "region": region,
        "generatedAt": now.isoformat(),
        "alerts": [alert_json(note, region) for note in notes],
    }


#: How each kind of notification is marked in chat (Chatbot and the Slack forwarder).
EMOJI = {"threshold": ":warning:", "forecast": ":crystal_ball:", "recovered": ":white_check_mark:"}
_EVENT_TYPE = {
    "threshold": "QuotaLevelCrossed",
    "forecast": "QuotaExhaustionForecast",
    "recovered": "QuotaRecovered",
}


def chatbot_single(note: Notification, region: str) -> dict[str, Any]:
    key = note.key
    description = "\n".join(
        f"*{label}:* {value}" for label, value in facts(note, region) if label != "Console"
    )
    link = console_url(key_region(key, region), key.usage_plan_id)
    open_it = [f"Open the usage plan: {link}"] if link is not None else []
    return {
        "version": "1.0",
        "source": "custom",
        "id": note.event_id,
        "content": {
            "textType": "client-markdown",
            "title": f"{EMOJI[note.kind]} {headline(note)}",
            "description": description,
            "nextSteps": [
                *open_it,
                "Extend the key (UpdateUsage), raise the plan's quota, or talk to the client",
            ]
            if note.kind != "recovered"
            else [],
            "keywords": [key.usage_plan_name, key.period, note.kind],
        },
        "metadata": {
            "threadId": f"quota-{key.usage_plan_id}-{key.api_key_id}-{key.period_start:%Y%m%d}",
            "summary": headline(note),
            "eventType": _EVENT_TYPE[note.kind],
            "relatedResources": [key.usage_plan_id, key.api_key_id],
            "additionalContext": {
                "usagePlanId": key.usage_plan_id,
                "apiKeyId": key.api_key_id,
                "utilization": percent(key.utilization),
            },
        },
    }


@dataclass(frozen=True)
class AlertMessage:
    """One SNS publish: its subject, its per-protocol bodies, and the notifications it carries."""

    subject: str
    bodies: dict[str, str]
    notes: tuple[Notification, ...]

    @property
    def message(self) -> str:
        """The ``Message`` of a ``MessageStructure="json"`` publish."""
        return json.dumps(self.bodies, separators=(",", ":"))

    @property
    def size(self) -> int:
        return len(self.message.encode())


def single_message(note: Notification, *, region: str, now: datetime) -> AlertMessage:
    data = json.dumps(structured([note], region=region, now=now, digest=False), separators=(",", ":"))
    return AlertMessage(
        subject=subject(note),
        bodies={
            "default": json.dumps(chatbot_single(note, region), separators=(",", ":")),
            "email": email_body(note, region),
            "lambda": data,
            "sqs": data,
        },
        notes=(note,),
    )


# -- digests --------------------------------------------------------------------------------------
def digest_line(note: Notification) -> str:
    key = note.key
    if note.kind == "threshold":
        what = f"crossed {note.level}%, at {percent(key.utilization)}"
    elif note.kind == "forecast" and note.forecast is not None:
        what = f"runs out ~{_when(note.forecast.exhausts_at)}, at {percent(key.utilization)}"
    else:
        what = f"recovered ({note.reason})"
    where = "" if key.target is None or key.target.home else f"[{key.target.describe()}] "
    return (
        f"{where}{key.usage_plan_name} / {key_label(key)} ({key.api_key_id}): {what}; "
        f"{_count(key.remaining)} of {_count(key.limit)} left, {key.period} resets {_when(key.resets_at)}"
    )


def _counts(notes: Sequence[Notification]) -> str:
    kinds = [
        ("threshold", "crossed a level"),
        ("forecast", "forecast to run out"),
        ("recovered", "recovered"),
    ]
    parts = []
    for kind, words in kinds:
        count = sum(1 for note in notes if note.kind == kind)
        if count:
            parts.append(f"{count} {words}")
    return ", ".join(parts)


def digest_subject(total: int, notes: Sequence[Notification], part: int, parts: int) -> str:
    suffix = f" (part {part} of {parts})" if parts > 1 else ""
    return ascii_subject(f"[quota] {total} API keys: {_counts(notes)}{suffix}")


def digest_message(
    notes: Sequence[Notification], *, total: int, region: str, now: datetime, part: int = 1, parts: int = 1
) -> AlertMessage:
    ordered = sorted(notes, key=_digest_order)
    lines = [digest_line(note) for note in ordered]
    plans = sorted(
        {(key_region(note.key, region), note.key.usage_plan_id, note.key.usage_plan_name) for note in ordered}
    )
    links = [(name, console_url(plan_region, plan_id)) for plan_region, plan_id, name in plans]
    console_lines = [f"  {name}: {link}" for name, link in links if link is not None]
    part_text = f", part {part} of {parts}" if parts > 1 else ""
    title = f"{total} API keys need attention ({_counts(ordered)}){part_text}"
    email = "\n".join(
        [
            f"{title}.",
            "",
            *[f"- {line}" for line in lines],
            "",
            *(["Usage plans in the API Gateway console:", *console_lines, ""] if console_lines else []),
            _howto(),
            SIGNATURE,
        ]
    )
    chatbot = {
        "version": "1.0",
        "source": "custom",
        "id": f"digest:{now.isoformat()}:{part}",
        "content": {
            "textType": "client-markdown",
            "title": f":rotating_light: {title}",
            "description": "\n".join(f"- {line}" for line in lines),
            "nextSteps": ["Open the usage plans in the API Gateway console"],
            "keywords": ["quota", "digest"],
        },
        "metadata": {
            "summary": title,
            "eventType": "QuotaDigest",
            "relatedResources": [plan_id for _, plan_id, _ in plans],
            "additionalContext": {"keys": str(len(ordered)), "part": f"{part} of {parts}"},
        },
    }
    data = json.dumps(
        structured(ordered, region=region, now=now, digest=True, part=part, parts=parts),
        separators=(",", ":"),
    )
    return AlertMessage(
        subject=digest_subject(total, ordered, part, parts),
        bodies={
            "default": json.dumps(chatbot, separators=(",", ":")),
            "email": email,
            "lambda": data,
            "sqs": data,
        },
        notes=tuple(ordered),
    )


def _digest_order(note: Notification) -> tuple[int, float, str, str]:
    rank = {"threshold": 0, "forecast": 1, "recovered": 2}[note.kind]
    return (rank, -(note.key.utilization or 0.0), note.key.usage_plan_name, key_label(note.key))


def compose(
    notes: Sequence[Notification],
    *,
    digest_min: int,
    region: str,
    now: datetime,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> list[AlertMessage]:
    """The messages for one run: one each below ``digest_min`` notifications, else a digest in parts."""
    if not notes:
        return []
    if len(notes) < digest_min:
        return [single_message(note, region=region, now=now) for note in notes]
    ordered = sorted(notes, key=_digest_order)
    chunks = _split(ordered, region=region, now=now, max_bytes=max_bytes)
    return [
        digest_message(chunk, total=len(ordered), region=region, now=now, part=number, parts=len(chunks))
        for number, chunk in enumerate(chunks, start=1)
    ]


#: A part is first filled to this share of the limit by the average size of a key, then checked.
_FILL = 0.95


def _split(
    notes: Sequence[Notification], *, region: str, now: datetime, max_bytes: int
) -> list[Sequence[Notification]]:
    """Cut a digest into parts that each fit in one SNS message.

    The whole digest is built once to learn the average size of a key; each part then takes as
    many keys as should fit, and is built to check (and cut by a tenth until it fits): each key is
    built about three times in all (docs/benchmarks.md, "The alert step at 10,000 keys").
    """

    def size(chunk: Sequence[Notification]) -> int:
        return digest_message(chunk, total=len(notes), region=region, now=now, part=99, parts=99).size

    whole = size(notes)
    if whole <= max_bytes:
        return [notes]
    per_part = max(1, int(max_bytes * _FILL / (whole / len(notes))))
    parts: list[Sequence[Notification]] = []
    start = 0
    while start < len(notes):
        chunk = notes[start : start + per_part]
        while len(chunk) > 1 and size(chunk) > max_bytes:
            chunk = chunk[: max(1, len(chunk) * 9 // 10)]
        parts.append(chunk)
        start += len(chunk)
    return parts
