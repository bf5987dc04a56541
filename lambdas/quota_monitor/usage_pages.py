"""The GetUsage paginator at its documented import path, ``quota_monitor.usage_pages``.

The code lives in :mod:`quota_monitor.read.usage_pages`; this module keeps the path the README
documents working (``from quota_monitor.usage_pages import paginate_usage``).
"""

from quota_monitor.errors import (
    InvalidStartingToken,
    MalformedUsagePage,
    PaginationLoop,
    StaleStartingToken,
    UsagePaginationError,
)
from quota_monitor.read.usage_pages import (
    MAX_PAGE_SIZE,
    UsagePage,
    UsagePages,
    UsageResult,
    merge_daily,
    paginate_usage,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "InvalidStartingToken",
    "MalformedUsagePage",
    "PaginationLoop",
    "StaleStartingToken",
    "UsagePage",
    "UsagePages",
    "UsagePaginationError",
    "UsageResult",
    "merge_daily",
    "paginate_usage",
]
