"""The monitor function's permissions: the calls the runtime makes, on the resources it makes them on.

The runtime contract lists the calls. API Gateway's control plane is authorised per HTTP verb and
path (``apigateway:GET`` on ``arn:aws:apigateway:<region>::/usageplans``...), so read-only access
to exactly the paths read is expressible. ``cloudwatch:PutMetricData`` has no resource-level
permission; the ``cloudwatch:namespace`` condition limits it to the monitor's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The alert state protocol's calls: a Scan a run, conditional updates (claim, confirm, release).
STATE_TABLE_ACTIONS = ("dynamodb:Scan", "dynamodb:UpdateItem")
#: With the fast path, the fast path reads the watch lists and the keys' states (BatchGetItem: any
#: item, as a state key is any plan's)...
FAST_PATH_ACTIONS = ("dynamodb:BatchGetItem",)
#: ...the full scan writes the watch lists (PutItem, which replaces a whole item: only theirs), and
#: both read the shared API budget (GetItem: only its items). ``dynamodb:LeadingKeys`` is the
#: partition key of every item a request names.
FAST_PATH_ITEMS = (
    ("WriteWatchLists", "dynamodb:PutItem", "~watch#*"),
    ("ReadApiBudget", "dynamodb:GetItem", "~budget#*"),
)


#: With the quota endpoint, both paths write the key snapshots (whole items: only theirs), and the
#: full scan reads its last ones back for the plans it could not read.
SNAPSHOT_ITEMS = (
    ("WriteKeySnapshots", "dynamodb:BatchWriteItem", ("~snap#*", "~snapfast#*")),
    ("ReadKeySnapshots", "dynamodb:BatchGetItem", ("~snap#*",)),
)


def apigateway_arn(path: str, region: str = Aws.REGION) -> str:
    """``arn:<partition>:apigateway:<region>::<path>``: API Gateway resources have no account."""
    return f"arn:{Aws.PARTITION}:apigateway:{region}::{path}"


def apigateway_read_paths(*, cross_check_plan_keys: bool) -> list[str]:
    """GetUsagePlans, GetUsage, GetApiKeys; GetUsagePlanKeys only when the cross-check is on."""
    paths = ["/usageplans", "/usageplans/*/usage", "/apikeys"]
    if cross_check_plan_keys:
        paths.append("/usageplans/*/keys")
    return paths


def monitor_statements(
    *,
    namespace: str,
    cross_check_plan_keys: bool,
    table_arn: str,
    regions: Sequence[str] = (),
    spokes: SpokeAccess | None = None,
    fast_path: bool = False,
    key_snapshots: bool = False,
) -> list[iam.PolicyStatement]:
    """Everything but publishing alerts (:meth:`infra.alerting.AlertTopic.grant_publish_to`),
    logging and the dead-letter queue (:mod:`infra.functions`). With ``fast_path``, also what the
    fast path's function needs: it runs under the same role, the one the spoke roles trust.

    ``regions``: where the monitor reads its own account (``REGIONS``; none, the stack's region);
    ``spokes``: the role it may assume in other accounts, and where it reads which accounts.
    """
    statements = [
        iam.PolicyStatement(
            sid="ReadUsagePlansUsageAndKeys",
            actions=["apigateway:GET"],
            resources=[
                apigateway_arn(path, region)
                for region in (regions or (Aws.REGION,))
                for path in apigateway_read_paths(cross_check_plan_keys=cross_check_plan_keys)
            ],
        ),
        iam.PolicyStatement(
            sid="PublishQuotaMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
        ),
        iam.PolicyStatement(
            sid="KeepAlertState",
            actions=[*STATE_TABLE_ACTIONS, *(FAST_PATH_ACTIONS if fast_path else ())],
            resources=[table_arn],
        ),
    ]
    if fast_path:
        statements += [
            iam.PolicyStatement(
                sid=sid,
                actions=[action],
                resources=[table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keys]}},
            )
            for sid, action, keys in FAST_PATH_ITEMS
        ]
    if key_snapshots:
        statements += [
            iam.PolicyStatement(
                sid=sid,
                actions=[action],
                resources=[table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(keys)}},
            )
            for sid, action, keys in SNAPSHOT_ITEMS
        ]
    if spokes is not None:
        statements += spokes.statements()
    return statements


@dataclass(frozen=True, kw_only=True)
class SpokeAccess:
    """The monitor's way into spoke accounts: their role, by name, in the accounts listed or of the
    organization; and the SSM parameters that list the accounts (:mod:`infra.spoke`)."""

    role_name: str
    accounts: Sequence[str]
    organization_id: str | None
    parameters_path: str

    def statements(self) -> list[iam.PolicyStatement]:
        """``sts:AssumeRole`` on the role's name in any account, held to the organization
        (``aws:ResourceOrgID``) or to the accounts listed (``aws:ResourceAccount``): the condition, not
        a list of ARNs, so that the policy does not grow 55 characters an account; and
        ``ssm:GetParametersByPath`` on the accounts' path."""
        condition = (
            {"StringEquals": {"aws:ResourceOrgID": self.organization_id}}
            if self.organization_id is not None
            else {"StringEquals": {"aws:ResourceAccount": list(self.accounts)}}
        )
        return [
            iam.PolicyStatement(
                sid="ReadSpokeAccounts",
                actions=["sts:AssumeRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::*:role/{self.role_name}"],
                conditions=condition,
            ),
            iam.PolicyStatement(
                sid="ListSpokeAccounts",
                actions=["ssm:GetParametersByPath"],
                resources=[
                    f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{self.parameters_path}"
                ],
            ),
        ]
