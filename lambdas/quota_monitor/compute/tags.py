"""How the monitor reads the values of its tags (``quota-monitor:*``) on usage plans and API keys.

One rule for every tag the monitor reads, so that owners learn it once: today
``quota-monitor:thresholds`` and ``quota-monitor:mute`` (:mod:`quota_monitor.alert.thresholds`);
any later tag (a metrics selection, a route) reads its value through the same two functions.

AWS's general rule for tag values, which CloudFormation and the Tag Editor apply, allows letters,
digits, spaces and ``_ . : / = + - @``, and no comma (docs/aws-behaviour.md#tags). So a tag that
holds several values separates them with ``/`` or with spaces (``50/75/95``, ``50 75 95``). A comma
is still read where an API or tool let it through (API Gateway's own TagResource may: its
character set is ambiguous), and ``/`` and spaces may be mixed with it (``50, 75, 95``). Nothing
the monitor prints or documents suggests a comma for a tag.

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
#: The tags read today (:mod:`quota_monitor.alert.thresholds`): alert levels, and muting.
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
