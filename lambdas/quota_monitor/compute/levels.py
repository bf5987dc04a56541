"""Where a key stands against alert levels, in whole numbers: shared by the alert rules, the metric
selection and the records, so that "at or above 80%" means the same thing everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quota_monitor.models import KeyUsage


def level_reached(key: KeyUsage, levels: tuple[int, ...]) -> int:
    """The highest level whose share of the limit the key has used (0 for none), in whole numbers:
    ``consumed * 100 >= level * limit``, never a rounded percentage."""
    if key.limit is None or key.remaining is None:
        return 0
    consumed = max(0, key.limit - key.remaining)
    reached = [level for level in levels if consumed * 100 >= level * key.limit]
    return max(reached, default=0)
