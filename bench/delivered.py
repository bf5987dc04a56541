"""What reached the alerts' readers, counted by crossing: doubles, recoveries and misses.

The monitor promises one alert per crossing: per key, level and quota period, none lost, none
doubled, whichever path sends it and however often a run is repeated, and no "recovered" message
while usage only grows. What is counted here is what was delivered, read back where a reader gets
it: each SQS message of the inbox subscribed to the alert topic (an SNS envelope whose ``Message``
holds ``alerts``, several in a digest: :func:`ids_in_message`), and each EventBridge event a rule
sent to a queue (its ``detail.id``: :func:`id_of_event`).

Every alert carries an id (:attr:`quota_monitor.alert.rules.Notification.event_id`)
``<kind>:[<account>:<region>:]<plan>:<key>:<period start>:<level>[:<episode>]``, the episode being
how many times the key came back under its levels in the period before it crossed again
(:class:`AlertId`). :func:`tally` counts, for every (key, level, period), the threshold alerts
delivered whatever their id: a second one is a double, be it the same id delivered twice or the
same level again with episode ``:1``. Usage only grows in the benchmarks, so every recovery
delivered is a false one; and a crossing is missing when no threshold alert of its level, or of a
higher one (a run that saw both sends the higher), reached the reader in its period.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

KINDS = ("threshold", "forecast", "recovered")


class Slot(NamedTuple):
    """A key's level in one quota period: what one alert is owed for."""

    #: The usage plan's id, after ``<account>:<region>:`` for a key of another target than the home one.
    plan: str
    key: str
    level: int
    #: The period's first day (ISO).
    period: str


@dataclass(frozen=True)
class AlertId:
    """An alert's id, read (module doc)."""

    kind: str
    plan: str
    key: str
    period: str
    level: int
    episode: int = 0

    @classmethod
    def parse(cls, text: str) -> AlertId:
        kind, *parts = text.split(":")
        if kind not in KINDS or len(parts) not in (4, 5, 6, 7):
            raise ValueError(f"not an alert id: {text!r}")
        # Four or five parts for the home target; six or seven with the account and region first.
        where = parts[:2] if len(parts) >= 6 else []
        plan, key, period, level, *episode = parts[len(where) :]
        return cls(kind, ":".join([*where, plan]), key, period, int(level), int(episode[0]) if episode else 0)

    @property
    def slot(self) -> Slot:
        return Slot(self.plan, self.key, self.level, self.period)


def ids_in_message(body: str) -> list[str]:
    """The alert ids of one SQS message from the topic: an SNS envelope (or, with raw delivery, the
    message itself), one alert or a digest of several."""
    message: dict[str, Any] = json.loads(body)
    if "Message" in message and "alerts" not in message:
        message = json.loads(message["Message"])
    return [str(alert["id"]) for alert in message.get("alerts", [])]


def id_of_event(body: str) -> str:
    """The alert id of one EventBridge event, as a rule delivers it to a queue."""
    event: dict[str, Any] = json.loads(body)
    return str(event["detail"]["id"])


@dataclass(frozen=True)
class Tally:
    """One channel's deliveries against the crossings (module doc)."""

    #: Threshold alerts delivered, by key, level and period: their ids, one entry a delivery.
    alerts: dict[Slot, list[str]]
    #: Every recovery delivered (ids, one entry a delivery).
    recoveries: list[str]
    #: The crossings that no threshold alert of their level or a higher one covers.
    missing: list[Slot]
    #: Forecasts delivered, by key and period (plan, key, period): their ids, one entry a delivery.
    forecasts: dict[tuple[str, str, str], list[str]]
    #: Alerts delivered, of every kind (a digest's alerts each count).
    deliveries: int
    #: Crossings counted.
    crossings: int

    @property
    def doubled(self) -> dict[Slot, list[str]]:
        """The (key, level, period) alerted more than once, with what was delivered for each."""
        return {slot: ids for slot, ids in self.alerts.items() if len(ids) > 1}

    @property
    def repeated_forecasts(self) -> dict[tuple[str, str, str], list[str]]:
        """The keys forecast more than once in a period (whatever the id): shown, not judged."""
        return {where: ids for where, ids in self.forecasts.items() if len(ids) > 1}

    @property
    def ok(self) -> bool:
        return not self.doubled and not self.recoveries and not self.missing


def tally(delivered: Iterable[str], crossings: Iterable[Slot]) -> Tally:
    """Count ``delivered`` (alert ids, one a delivery: an id delivered twice appears twice) by key,
    level and period, against ``crossings`` (module doc)."""
    alerts: dict[Slot, list[str]] = {}
    recoveries: list[str] = []
    forecasts: dict[tuple[str, str, str], list[str]] = {}
    deliveries = 0
    for text in delivered:
        deliveries += 1
        alert = AlertId.parse(text)
        if alert.kind == "threshold":
            alerts.setdefault(alert.slot, []).append(text)
        elif alert.kind == "recovered":
            recoveries.append(text)
        else:
            forecasts.setdefault((alert.plan, alert.key, alert.period), []).append(text)
    highest: dict[tuple[str, str, str], int] = {}
    for slot in alerts:
        where = (slot.plan, slot.key, slot.period)
        highest[where] = max(highest.get(where, 0), slot.level)
    counted = list(crossings)
    missing = [c for c in counted if highest.get((c.plan, c.key, c.period), 0) < c.level]
    return Tally(alerts, recoveries, missing, forecasts, deliveries, len(counted))
