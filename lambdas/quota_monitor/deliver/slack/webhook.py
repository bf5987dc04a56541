"""Posting to a Slack incoming webhook: the URL checked first, then retries that honour Slack.

The webhook URL is a secret (anyone holding it can post to the channel): it is never logged, and
no error message here contains it.
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

from quota_monitor.backoff import at_least_retry_after, exponential, retry_after_seconds
from quota_monitor.errors import SlackDeliveryError

if TYPE_CHECKING:
    from collections.abc import Callable

#: Seconds kept beyond one request's timeout before the invocation ends.
SAFETY_SECONDS = 2.0


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
                retry_after = retry_after_seconds(error.headers.get("Retry-After"))
        except (ValueError, http.client.HTTPException) as error:
            # urllib's messages for these quote the URL: name the kind of error only.
            raise SlackDeliveryError(
                f"the Slack webhook URL could not be used ({type(error).__name__})"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            last = f"{type(error).__name__}: {reason}"
        if attempt < attempts:
            # Half to all of the exponential delay, never sooner than Slack's Retry-After.
            delay = exponential(attempt, base=base_delay, cap=max_delay) * (0.5 + rand() / 2)
            delay = at_least_retry_after(delay, retry_after, cap=max_delay)
            if seconds_left is not None:
                delay = max(0.0, min(delay, seconds_left() - timeout - SAFETY_SECONDS))
            sleep(delay)
    raise SlackDeliveryError(f"Slack webhook failed {attempts} times; last: {last}")
