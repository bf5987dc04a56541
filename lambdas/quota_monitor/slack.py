"""Slack incoming-webhook messages from the alert topic: Block Kit rendering and delivery.

What arrives on the topic: the monitor's structured alerts (the ``lambda`` body of
:mod:`quota_monitor.messages`), CloudWatch alarm notifications (the stack's self-monitoring
alarms publish to the same topic), or anything else someone publishes (posted as text).

Slack's limits (../shared/AWS-NOTES.md): 50 blocks a message, 3,000 characters a text section,
150 a header. A digest too long for one message is shortened here, saying how many keys it
left out; the email and the structured body still list every one.

The webhook URL is a secret: it is never logged, and no error message here contains it.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from quota_monitor.messages import SCHEMA, percent

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MAX_BLOCKS = 50
MAX_SECTION = 3_000
MAX_HEADER = 150
MAX_FALLBACK_TEXT = 3_000
#: Seconds kept beyond one request's timeout before the invocation ends.
SAFETY_SECONDS = 2.0
_EMOJI = {"threshold": ":warning:", "forecast": ":crystal_ball:", "recovered": ":white_check_mark:"}


class SlackDeliveryError(RuntimeError):
    """The webhook refused the message, or kept failing; raised so that Lambda retries and counts it."""


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
    link = f"<{alert.get('consoleUrl')}|{_escape(alert.get('usagePlanName'))}>"
    event = alert.get("event")
    if event == "threshold":
        what = f"crossed *{alert.get('level')}%*, at {percent(alert.get('utilization'))}"
    elif event == "forecast":
        what = f"runs out ~{(alert.get('forecast') or {}).get('exhaustsAt', '?')[:16]} UTC"
    else:
        what = f"recovered ({_escape(alert.get('reason'))})"
    key = f"*{_escape(_key_name(alert))}* (`{_escape(alert.get('apiKeyId'))}`)"
    left = f"{_count(alert.get('remaining'))} of {_count(alert.get('limit'))} left"
    return f"{_EMOJI.get(str(event), '')} {link} / {key}: {what}; {left}"


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
        _header(f"{_EMOJI.get(str(alert.get('event')), '')} {alert_headline(alert)}"),
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


def check_webhook_url(url: str) -> str:
    """An https URL (plain http only to loopback, for local testing). The error never repeats the URL.

    Anything urllib would refuse later is refused here, because urllib's own errors quote the URL
    (``InvalidURL: URL can't contain control characters. '/services/T.../B.../<token> ...'``): a
    space or control character inside (a pasted line break), a port that is not a number.
    """
    url = url.strip()
    expected = "expected https://hooks.slack.com/services/..."
    if any(char.isspace() or not char.isprintable() for char in url):
        raise SlackDeliveryError(
            f"the Slack webhook secret holds a URL with a space or a control character inside ({expected})"
        )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SlackDeliveryError(
            f"the Slack webhook secret holds a URL with an invalid port ({expected})"
        ) from None
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise SlackDeliveryError(f"the Slack webhook secret does not hold an https URL ({expected})")
    return url


def post(
    url: str,
    message: dict[str, Any],
    *,
    attempts: int = 5,
    timeout: float = 10.0,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    seconds_left: Callable[[], float] | None = None,
) -> int:
    """POST to the webhook, retrying 429 (honouring Retry-After), 5xx and connection failures.

    Returns the number of attempts made; raises :class:`SlackDeliveryError` on a refusal (4xx other
    than 429), when the last attempt fails, or when ``seconds_left()`` (the invocation's remaining
    time) no longer covers a whole attempt: better to fail cleanly, and be retried by Lambda, than
    be cut off in the middle of a POST that may have been delivered.
    """
    data = json.dumps(message).encode()
    last = "none"
    for attempt in range(1, attempts + 1):
        if seconds_left is not None and seconds_left() < timeout + SAFETY_SECONDS:
            raise SlackDeliveryError(
                f"Slack webhook not tried again: too little time left in this invocation "
                f"after {attempt - 1} attempt(s); last: {last}"
            )
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked by check_webhook_url
            url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                return attempt
        except urllib.error.HTTPError as error:
            detail = error.read(200).decode("utf-8", "replace").strip()
            last = f"HTTP {error.code} {detail or error.reason}"
            if error.code != 429 and error.code < 500:
                raise SlackDeliveryError(f"Slack refused the message: {last}") from None
            if error.code == 429:
                retry_after = _seconds(error.headers.get("Retry-After"))
        except (ValueError, http.client.HTTPException) as error:
            # urllib's messages for these quote the URL: name the kind of error only.
            raise SlackDeliveryError(
                f"the Slack webhook URL could not be used ({type(error).__name__})"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            last = f"{type(error).__name__}: {reason}"
        if attempt < attempts:
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + rand() / 2)
            delay = min(max_delay, max(delay, retry_after or 0.0))
            if seconds_left is not None:
                delay = max(0.0, min(delay, seconds_left() - timeout - SAFETY_SECONDS))
            sleep(delay)
    raise SlackDeliveryError(f"Slack webhook failed {attempts} times; last: {last}")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
