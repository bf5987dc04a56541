"""The spoke role: what the hub's monitor may do in another account, and nothing more.

A spoke account holds usage plans the hub watches. Its role:

- trusts exactly the hub's monitor function role: the principal is the hub account, and the
  condition ``aws:PrincipalArn`` names the role, so that no other identity of the hub account can
  use it and the trust survives the hub role being replaced (a role ARN principal would be pinned to
  the old role's unique id) (docs/aws-behaviour.md#cross-account-and-cross-region);
- may call ``apigateway:GET`` on the usage paths, in the hub's regions only, and
  ``cloudwatch:PutMetricData`` in the monitor's namespace, in those regions only: the spoke's metrics
  stay in the spoke account, next to its APIs.

It is deployed on its own (:class:`SpokeRoleStack`, once per spoke account; IAM is global, so one
region is enough) or, for an AWS Organization, as a service-managed StackSet over organizational units
(:class:`SpokeStackSetStack`), which also reaches accounts added to those units later. The StackSet's
template is the same role, synthesized here: it has no assets, so member accounts need no bootstrap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aws_cdk import App, Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge
from infra.permissions import apigateway_read_paths
from infra.settings import DEFAULT_SPOKE_ROLE_NAME

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The hub assumes the role at the start of a run; a run ends within Lambda's 15 minutes.
SESSION_DURATION: Final = Duration.hours(1)


@dataclass(frozen=True, kw_only=True)
class SpokeSettings:
    """What a spoke role is told: the hub role it trusts, its own name, the regions and the namespace."""

    hub_role_arn: str
    role_name: str = DEFAULT_SPOKE_ROLE_NAME
    regions: Sequence[str]
    namespace: str

    @property
    def hub_account(self) -> str:
        return self.hub_role_arn.split(":")[4]


class SpokeRole(Construct):
    def __init__(self, scope: Construct, id_: str, *, settings: SpokeSettings) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.role_name,
            description="Lets the API Gateway quota monitor of account "
            f"{settings.hub_account} read usage plans and publish quota metrics here",
            assumed_by=iam.AccountPrincipal(settings.hub_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": settings.hub_role_arn}}
            ),
            max_session_duration=SESSION_DURATION,
        )
        policy = iam.Policy(
            self,
            "Policy",
            statements=spoke_statements(regions=settings.regions, namespace=settings.namespace),
        )
        policy.attach_to_role(self.role)
        for path in apigateway_read_paths(cross_check_plan_keys=True):
            if "*" in path:
                for region in settings.regions:
                    acknowledge(
                        policy,
                        f"IAM5[Resource::arn:<AWS::Partition>:apigateway:{region}::{path}]",
                        f"apigateway:GET on {path} for every usage plan in {region}: the monitor reads "
                        "the usage of all the account's plans, which it learns at run time. Read-only.",
                    )
        acknowledge(
            policy,
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the "
            "monitor's namespace and the hub's regions by conditions.",
        )


def spoke_statements(*, regions: Sequence[str], namespace: str) -> list[iam.PolicyStatement]:
    """The spoke role's whole permission: read the usage, publish the metrics (module doc)."""
    return [
        iam.PolicyStatement(
            sid="ReadUsagePlansUsageAndKeys",
            actions=["apigateway:GET"],
            resources=[
                f"arn:{Aws.PARTITION}:apigateway:{region}::{path}"
                for region in regions
                for path in apigateway_read_paths(cross_check_plan_keys=True)
            ],
        ),
        iam.PolicyStatement(
            sid="PublishQuotaMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={
                "StringEquals": {"cloudwatch:namespace": namespace, "aws:RequestedRegion": list(regions)}
            },
        ),
    ]


class SpokeRoleStack(Stack):
    """The spoke role on its own: deploy it once in each spoke account."""

    def __init__(self, scope: Construct, id_: str, *, settings: SpokeSettings, **options: Any) -> None:
        super().__init__(scope, id_, **options)
        self.spoke = SpokeRole(self, "Spoke", settings=settings)
        CfnOutput(
            self, "SpokeRoleArn", value=self.spoke.role.role_arn, description="The hub assumes this role"
        )


def spoke_template(settings: SpokeSettings) -> dict[str, Any]:
    """The spoke role's CloudFormation template, synthesized on its own (for the StackSet)."""
    app = App(analytics_reporting=False)
    stack = SpokeRoleStack(app, "Spoke", settings=settings)
    template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    template.pop("Rules", None)  # CDK's bootstrap-version check: member accounts need no bootstrap
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    if not template.get("Parameters"):
        template.pop("Parameters", None)
    return template


class SpokeStackSetStack(Stack):
    """The spoke role in every account of the given organizational units, present and future.

    Deploy it in the organization's management account (``call_as="SELF"``) or from a delegated
    administrator for StackSets (``call_as="DELEGATED_ADMIN"``), once trusted access for StackSets is on
    (docs/deploy.md).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        settings: SpokeSettings,
        organizational_units: Sequence[str],
        deployment_region: str,
        call_as: str = "SELF",
        **options: Any,
    ) -> None:
        super().__init__(scope, id_, **options)
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "SpokeRoles",
            stack_set_name=f"{self.stack_name}-roles",
            description="The API Gateway quota monitor's spoke role, in every account of the units",
            permission_model="SERVICE_MANAGED",
            call_as=call_as,
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            capabilities=["CAPABILITY_NAMED_IAM"],
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10,
                max_concurrent_percentage=25,
                region_concurrency_type="PARALLEL",
            ),
            # IAM is global: one stack instance an account, in one region.
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(organizational_units)
                    ),
                    regions=[deployment_region],
                )
            ],
            template_body=json.dumps(spoke_template(settings), separators=(",", ":"), sort_keys=True),
        )
