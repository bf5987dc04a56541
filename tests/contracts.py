"""The contracts users' scripts depend on, written once for every test that checks them."""

from __future__ import annotations

#: The CLI's JSON contract (README, "Scan your account"): exactly these fields, in this order.
JSON_FIELDS = [
    "usagePlanId",
    "usagePlanName",
    "apiKeyId",
    "apiKeyName",
    "period",
    "periodStart",
    "used",
    "remaining",
    "limit",
    "utilization",
    "accountId",
    "region",
]
