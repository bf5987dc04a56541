"""Slack incoming-webhook messages from the alert topic, in Block Kit.

What arrives on the topic: the monitor's structured alerts (the ``lambda`` body of
:mod:`quota_monitor.deliver.messages`), CloudWatch alarm notifications (the stack's self-monitoring
alarms publish to the same topic), or anything else someone publishes (posted as text).

Slack's limits (docs/aws-behaviour.md#sns-kms-and-chat): 50 blocks a message, 3,000 characters a text section,
150 a header. A digest too long for one message is shortened here, saying how many keys it
left out; the email and the structured body still list every one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from quota_monitor.deliver.messages import EMOJI, SCHEMA, percent

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_BLOCKS = 50
MAX_SECTION = 3_000
MAX_HEADER = 150
MAX_FALLBACK_TEXT = 3_000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: object) -> str:
    """Slack mrkdwn's three control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, MAX_HEADER), "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, MAX_SECTION)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, MAX_SECTION)}]}


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def _key_name(alert: dict[str, Any]) -> str:
    return str(alert.get("apiKeyName") or alert.get("apiKeyId"))


def alert_headline(alert: dict[str, Any]) -> str:
    event, name, plan = alert.get("event"), _key_name(alert), alert.get("usagePlanName")
    period = alert.get("period")
    if event == "threshold":
        return f"{name} crossed {alert.get('level')}% of its {period} quota (plan {plan})"
    if event == "forecast":
        return f"{name} is on course to run out of its {period} quota (plan {plan})"
    return f"{name} recovered: {alert.get('reason')} (plan {plan})"


def alert_line(alert: dict[str, Any]) -> str:
    """One key in a digest, in mrkdwn."""
    url, plan = alert.get("consoleUrl"), _escape(alert.get("usagePlanName"))
    # No console link in partitions without a known console (quota_monitor.deliver.console).
    link = f"<{url}|{plan}>" if url else plan
    event = alert.get("event")
    if event == "threshold":
        what = f"crossed *{alert.get('level')}%*, at {percent(alert.get('utilization'))}"
    elif event == "forecast":
        what = f"runs out ~{(alert.get('forecast') or {}).get('exhaustsAt', '?')[:16]} UTC"
    else:
        what = f"recovered ({_escape(alert.get('reason'))})"
    key = f"*{_escape(_key_name(alert))}* (`{_escape(alert.get('apiKeyId'))}`)"
    left = f"{_count(alert.get('remaining'))} of {_count(alert.get('limit'))} left"
    return f"{EMOJI.get(str(event), '')} {link} / {key}: {what}; {left}"


def _single(alert: dict[str, Any]) -> list[dict[str, Any]]:
    fields = [
        ("Usage plan", f"{alert.get('usagePlanName')} (`{alert.get('usagePlanId')}`)"),
        ("API key", f"{_key_name(alert)} (`{alert.get('apiKeyId')}`)"),
        ("Utilization", percent(alert.get("utilization"))),
        ("Level", f"{alert.get('level')}% of {', '.join(str(x) for x in alert.get('levels', []))}"),
        ("Used / limit", f"{_count(alert.get('used'))} / {_count(alert.get('limit'))}"),
        ("Remaining", _count(alert.get("remaining"))),
        ("Period", f"{alert.get('period')} from {alert.get('periodStart')}"),
        ("Resets", f"{str(alert.get('resetsAt', ''))[:16].replace('T', ' ')} UTC"),
    ]
    blocks: list[dict[str, Any]] = [
        _header(f"{EMOJI.get(str(alert.get('event')), '')} {alert_headline(alert)}"),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{_escape(v)}", 2_000)} for k, v in fields],
        },
    ]
    forecast = alert.get("forecast")
    if isinstance(forecast, dict):
        rate = f"{forecast.get('requestsPerHour', 0):,.0f} requests an hour"
        when = str(forecast.get("exhaustsAt", ""))[:16].replace("T", " ")
        blocks.append(_section(f":crystal_ball: At {rate} the quota runs out {when} UTC, before it resets."))
    if alert.get("consoleUrl"):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the usage plan"},
                        "url": str(alert.get("consoleUrl")),
                    }
                ],
            }
        )
    return blocks


def _digest(alerts: Sequence[dict[str, Any]], part: int, parts: int) -> list[dict[str, Any]]:
    suffix = f" (part {part} of {parts})" if parts > 1 else ""
    blocks: list[dict[str, Any]] = [
        _header(f":rotating_light: {len(alerts)} API keys need attention{suffix}")
    ]
    # Room for the header, the "left out" note and the footer.
    room = MAX_BLOCKS - 3
    sections: list[list[str]] = [[]]
    shown = 0
    for alert in alerts:
        line = alert_line(alert)
        if sections[-1] and len("\n".join([*sections[-1], line])) > MAX_SECTION:
            if len(sections) >= room:
                break
            sections.append([])
        sections[-1].append(line)
        shown += 1
    blocks += [_section("\n".join(lines)) for lines in sections if lines]
    left_out = len(alerts) - shown
    if left_out:
        blocks.append(
            _context(
                f"…and {left_out} more key{'s' * (left_out != 1)} not shown here; the email lists every key."
            )
        )
    return blocks


def alerts_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A webhook message for the monitor's structured alert body."""
    alerts = [alert for alert in payload.get("alerts", []) if isinstance(alert, dict)]
    if len(alerts) == 1 and not payload.get("digest"):
        blocks = _single(alerts[0])
        text = alert_headline(alerts[0])
    else:
        blocks = _digest(alerts, int(payload.get("part", 1)), int(payload.get("parts", 1)))
        text = f"{len(alerts)} API keys need attention"
    blocks.append(_context(f"apigw-quota-monitor · {payload.get('region', '')}"))
    return {"text": _clip(text, MAX_FALLBACK_TEXT), "blocks": blocks[:MAX_BLOCKS]}


def alarm_message(alarm: dict[str, Any]) -> dict[str, Any]:
    """A webhook message for a CloudWatch alarm notification."""
    state = str(alarm.get("NewStateValue", "?"))
    emoji = (
        ":rotating_light:"
        if state == "ALARM"
        else ":white_check_mark:"
        if state == "OK"
        else ":grey_question:"
    )
    title = f"{emoji} {state}: {alarm.get('AlarmName', 'CloudWatch alarm')}"
    lines = [
        _escape(alarm.get("AlarmDescription") or ""),
        f"*Reason:* {_escape(alarm.get('NewStateReason', ''))}",
        f"*Was:* {_escape(alarm.get('OldStateValue', '?'))} · *Region:* {_escape(alarm.get('Region', '?'))}",
    ]
    return {
        "text": _clip(title, MAX_FALLBACK_TEXT),
        "blocks": [_header(title), _section("\n".join(line for line in lines if line))],
    }


def message_for(subject: str | None, body: str) -> dict[str, Any]:
    """Whatever came over the topic, as a webhook message."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        return alerts_message(data)
    if isinstance(data, dict) and "AlarmName" in data and "NewStateValue" in data:
        return alarm_message(data)
    text = f"*{_escape(subject)}*\n{_escape(body)}" if subject else _escape(body)
    return {"text": _clip(subject or body, MAX_FALLBACK_TEXT), "blocks": [_section(text)]}
