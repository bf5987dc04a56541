"""An emulator of API Gateway's usage-plan API on loopback, in the real wire format.

Product code: ``quota-monitor demo``, the tests and the benchmarks all run against it.

    from apigw_sandbox import SandboxAccount, SandboxServer, seed_demo_account

    account = SandboxAccount()
    seed_demo_account(account)
    with SandboxServer(account) as server:
        boto3.client("apigateway", endpoint_url=server.url, ...)
"""

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.faults import Fault, FaultInjector
from apigw_sandbox.seed import SeededAccount, seed_demo_account, seed_scale_account
from apigw_sandbox.server import AccountThrottle, SandboxServer

__all__ = [
    "AccountThrottle",
    "Fault",
    "FaultInjector",
    "SandboxAccount",
    "SandboxServer",
    "SeededAccount",
    "seed_demo_account",
    "seed_scale_account",
]
