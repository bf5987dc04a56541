#!/usr/bin/env python3
"""The CDK app: ``QuotaMonitorStack`` from ``cdk.json`` context, overridable with ``-c key=value``.

``cdk synth`` (``make synth``) writes ``cdk.out/``; run on its own, ``python app.py`` writes to a
temporary folder, as the CDK does without an outdir. cdk-nag's AwsSolutions checks run at synth:
any finding without an acknowledgement fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The monitor's settings are checked by the runtime's own parser (quota_monitor.config).
sys.path.insert(0, str(ROOT / "lambdas"))

from aws_cdk import App, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.context import settings_from_context  # noqa: E402
from infra.settings import SettingError  # noqa: E402
from infra.spoke import SpokeRoleStack, SpokeStackSetStack  # noqa: E402
from infra.stack import QuotaMonitorStack  # noqa: E402


def build(app: App) -> QuotaMonitorStack:
    settings = settings_from_context(app.node.get_all_context())
    stack = QuotaMonitorStack(
        app,
        settings.stack_name,
        settings=settings.monitor,
        description="apigw-quota-monitor: remaining-quota metrics and alerts for API Gateway usage plans",
    )
    spokes = settings.spokes
    if spokes is not None:
        # Deployed apart, in other accounts: cdk deploy <stack>Spoke (each spoke account) or
        # <stack>SpokeStackSet (the organization's management account); docs/deploy.md.
        SpokeRoleStack(
            app,
            f"{settings.stack_name}Spoke",
            settings=spokes.settings,
            description="apigw-quota-monitor: the role the hub's monitor assumes to read this account",
        )
        if spokes.organizational_units:
            SpokeStackSetStack(
                app,
                f"{settings.stack_name}SpokeStackSet",
                settings=spokes.settings,
                organizational_units=spokes.organizational_units,
                deployment_region=spokes.settings.regions[0],
                call_as=spokes.call_as,
                description="apigw-quota-monitor: the spoke role in every account of the units",
            )
    # Acknowledgements also go into the template's metadata (cdk_nag.rules_to_suppress), so that a
    # reviewer reading the template sees each one with its reason.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )
    return stack


def main() -> None:
    app = App()
    try:
        build(app)
    except SettingError as error:
        sys.exit(f"Configuration error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
