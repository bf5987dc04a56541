"""How the monitor reads the values of its tags (``quota-monitor:*``) on usage plans and API keys.

One rule for the tags that take a list or a flag, so that owners learn it once:
``quota-monitor:thresholds`` and ``quota-monitor:mute`` (:mod:`quota_monitor.alert.thresholds`).
The single-word tags, ``quota-monitor:route`` (:mod:`quota_monitor.alert.routes`) and
``quota-monitor:metrics`` (:mod:`quota_monitor.publish.selection`), are read where they are used.

AWS's general rule for tag values allows letters, digits, spaces and ``_ . : / = + - @``, and no
comma (docs/aws-behaviour.md#tags). So a list tag separates its values with ``/`` or spaces
(``50/75/95``, ``50 75 95``); a comma is still read where an API or tool let it through, mixed
with them or not (``50, 75, 95``), but nothing the monitor prints or documents suggests one.

- :func:`tag_list`: the values of a list tag, in order; an empty value between separators (``50//95``,
  a trailing ``/``) is an error, never skipped, so that a typo is seen rather than half read.
- :func:`tag_flag`: ``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``), any case.

Both raise :class:`TagValueError` with a message saying what is wrong; the caller names the
resource, the tag and the value, and carries on without the tag (a bad tag never stops a run).
"""

from __future__ import annotations

import re

#: Every tag the monitor reads starts with this.
TAG_PREFIX = "quota-monitor:"
#: The tags read with :func:`tag_list` and :func:`tag_flag` (:mod:`quota_monitor.alert.thresholds`):
#: alert levels, and muting.
TAG_THRESHOLDS = f"{TAG_PREFIX}thresholds"
TAG_MUTE = f"{TAG_PREFIX}mute"
#: How several values in one tag are separated: ``/`` or spaces (which AWS allows in every tool),
#: or commas where AWS let them through.
LIST_SEPARATORS = "/ or spaces"
_SEPARATOR = re.compile(r"\s*[,/]\s*|\s+")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class TagValueError(ValueError):
    """A tag value that does not read as its tag requires; the message says what is wrong."""


def tag_list(value: str) -> tuple[str, ...]:
    """``"50/75/95"``, ``"50 75 95"`` or ``"50,75,95"`` -> ``("50", "75", "95")``.

    Leading and trailing spaces are ignored; an empty value, or an empty item between two
    separators, raises :class:`TagValueError`.
    """
    text = value.strip()
    if not text:
        raise TagValueError("an empty value")
    items = tuple(_SEPARATOR.split(text))
    if any(item == "" for item in items):
        raise TagValueError(f"an empty value between separators in {value!r}")
    return items


def tag_flag(value: str) -> bool:
    """``"true"`` -> True, ``"false"`` -> False (and the other spellings in the module doc)."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TagValueError(f"{value!r} is not true or false")
