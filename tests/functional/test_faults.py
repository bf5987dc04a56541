"""The sandbox's fault injection itself: each kind on the wire, the controls, the seed, the record
of what was served. What the monitor makes of each fault is in test_reliability.py."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from apigw_sandbox.faults import KINDS, Fault, InvalidFault
from quota_monitor.config import ScanSettings
from quota_monitor.errors import MalformedResponse
from quota_monitor.read.calls import RetryPolicy
from quota_monitor.read.scan import scan_account
from tests.fault_support import HOLD, READ_TIMEOUT, add_plan, control, fast_api, sandbox_client

if TYPE_CHECKING:
    from collections.abc import Callable

    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import LocalCloud


@pytest.fixture
def plan(account: SandboxAccount) -> tuple[str, list[str]]:
    return add_plan(account, "gold", 5, period="DAY")


def get_usage(client: Any, account: SandboxAccount, plan_id: str, **params: Any) -> Any:
    today = account.today().isoformat()
    return client.get_usage(usagePlanId=plan_id, startDate=today, endDate=today, **params)


def test_error_faults_answer_as_api_gateway_does(
    cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]
) -> None:
    client = sandbox_client(cloud)
    expected = {
        "throttle": (429, "TooManyRequestsException", "3"),
        "internal-error": (500, "InternalFailure", None),
        "unavailable": (503, "ServiceUnavailableException", "3"),
    }
    for kind, (status, code, retry_after) in expected.items():
        cloud.sandbox.faults.reset()
        cloud.sandbox.faults.add(kind, operation="GetUsage", retry_after=3)
        with pytest.raises(ClientError) as caught:
            get_usage(client, account, plan[0])
        response = caught.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert response["Error"]["Code"] == code
        assert response["ResponseMetadata"]["HTTPHeaders"].get("retry-after") == retry_after
        assert "(sandbox fault)" in response["Error"]["Message"]
    assert client.get_usage_plans()["items"]  # other operations untouched


def test_a_connection_reset_and_a_read_timeout_reach_botocore_as_network_errors(
    cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]
) -> None:
    client = sandbox_client(cloud)
    cloud.sandbox.faults.add("connection-reset", operation="GetUsage", count=1)
    with pytest.raises(ConnectionClosedError):
        get_usage(client, account, plan[0])
    cloud.sandbox.faults.add("read-timeout", operation="GetUsage", count=1, delay=HOLD)
    with pytest.raises(ReadTimeoutError):
        get_usage(sandbox_client(cloud, read_timeout=READ_TIMEOUT), account, plan[0])
    # Both were one-offs.
    assert set(get_usage(client, account, plan[0])["items"]) == set(plan[1])
    assert cloud.sandbox.faults.injected == {"connection-reset": 1, "read-timeout": 1}


def test_body_faults(cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]) -> None:
    client = sandbox_client(cloud)
    plan_id, _ = plan
    faults = cloud.sandbox.faults

    faults.add("malformed-json", operation="GetUsage", count=1)
    with pytest.raises(MalformedResponse, match="GetUsage: the response body is not JSON"):
        get_usage(client, account, plan_id)

    faults.add("missing-field", operation="GetUsage", count=1)
    assert "items" not in get_usage(client, account, plan_id)
    faults.add("missing-field", operation="GetUsagePlans", count=1)
    assert "items" not in client.get_usage_plans()
    faults.add("missing-field", operation="GetUsage", count=1, field="usagePlanId")
    assert set(get_usage(client, account, plan_id)) == {"startDate", "endDate", "items", "ResponseMetadata"}

    faults.add("empty-values", count=1)
    page = get_usage(client, account, plan_id, limit=2)
    assert (page["items"], "position" in page) == ({}, False)

    faults.add("bad-number", operation="GetUsage", count=1, value=None)
    daily = get_usage(client, account, plan_id)["items"]
    assert sum(1 for series in daily.values() for day in series for n in day if n is None) == 1
    faults.add("bad-number", operation="GetUsagePlans", count=1)
    assert [p["quota"]["limit"] for p in client.get_usage_plans()["items"]] == [-1]

    intact = get_usage(client, account, plan_id)["items"]
    days = len(next(iter(intact.values())))
    shapes: dict[str, Callable[[Any, Any], bool]] = {
        "one-number": lambda was, sent: sum(1 for day in sent if len(day) == 1) == 1,
        "string": lambda was, sent: sum(1 for day in sent for n in day if n == "lots") == 1,
        "not-a-list": lambda was, sent: sent == "n/a",
        "fewer-days": lambda was, sent: sent == was[1:],  # the first day left out
        "fewer-days-at-end": lambda was, sent: sent == was[:-1],
        "more-days": lambda was, sent: len(sent) == days + 1 and sent[:days] == was,
    }
    for shape, looks_right in shapes.items():
        faults.add("bad-entry", count=1, shape=shape)
        sent = get_usage(client, account, plan_id)["items"]
        ((key_id, series),) = [(k, v) for k, v in sent.items() if v != intact[k]]
        assert looks_right(intact[key_id], series), shape


def test_deletion_faults_change_the_account_for_good(
    cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]
) -> None:
    client = sandbox_client(cloud)
    plan_id, keys = plan
    cloud.sandbox.faults.add("key-deleted", count=1)
    served = get_usage(client, account, plan_id)["items"]
    (deleted,) = set(keys) - set(account.keys)
    assert set(served) == set(keys) - {deleted}

    cloud.sandbox.faults.add("plan-deleted", count=1)
    with pytest.raises(ClientError, match="NotFoundException"):
        get_usage(client, account, plan_id)
    assert plan_id not in account.plans


def test_paging_faults(cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]) -> None:
    client = sandbox_client(cloud)
    plan_id, _ = plan
    first = get_usage(client, account, plan_id, limit=2)
    second = get_usage(client, account, plan_id, limit=2, position=first["position"])

    cloud.sandbox.faults.add("duplicate-key", operation="GetUsage", count=1)
    shifted = get_usage(client, account, plan_id, limit=2, position=first["position"])
    assert list(shifted["items"]) == [list(first["items"])[-1], next(iter(second["items"]))]
    assert shifted["position"] != second["position"]  # the shift carries on: nothing is skipped

    cloud.sandbox.faults.add("repeat-position", operation="GetUsage", count=1)
    echoed = get_usage(client, account, plan_id, limit=2, position=first["position"])
    assert echoed["position"] == first["position"]
    # On the first page there is no position to repeat: the fault does not fire there.
    cloud.sandbox.faults.add("repeat-position", operation="GetUsage")
    assert get_usage(client, account, plan_id, limit=2)["position"] == first["position"]
    assert cloud.sandbox.faults.injected == {"duplicate-key": 1, "repeat-position": 1}


def test_filters_by_operation_and_plan_and_count(cloud: LocalCloud, account: SandboxAccount) -> None:
    target, _ = add_plan(account, "target", 2)
    other, other_keys = add_plan(account, "other", 2)
    cloud.sandbox.faults.add("internal-error", plan_id=target, count=2)
    client = sandbox_client(cloud)
    for _ in range(2):
        with pytest.raises(ClientError, match="InternalFailure"):
            get_usage(client, account, target)
    assert get_usage(client, account, target)["items"]  # the count ran out
    assert set(get_usage(client, account, other)["items"]) == set(other_keys)
    assert client.get_usage_plans()["items"]  # requests about no plan never match a plan filter
    assert [(i.kind, i.operation, i.plan_id) for i in cloud.sandbox.faults.log] == [
        ("internal-error", "GetUsage", target)
    ] * 2


def injections(cloud: LocalCloud) -> Counter[tuple[str, str, str]]:
    return Counter((i.kind, i.operation, i.path) for i in cloud.sandbox.faults.log)


def test_the_same_seed_injects_the_same_faults_whatever_the_thread_order(
    cloud: LocalCloud, account: SandboxAccount
) -> None:
    for n in range(12):
        add_plan(account, f"plan-{n:02d}", 4)
    faults = cloud.sandbox.faults

    def scan_with_seed(seed: int) -> Counter[tuple[str, str, str]]:
        faults.reset(seed=seed)
        for kind in ("throttle", "internal-error", "unavailable", "connection-reset", "malformed-json"):
            faults.add(kind, probability=0.1, retry_after=0)
        result = scan_account(api, now=account.now(), settings=ScanSettings(max_workers=4, page_size=2))
        assert result.stats.keys_scanned == 48  # transient faults only, and retries enough: all recovered
        return injections(cloud)

    api = fast_api(
        cloud, RetryPolicy(max_attempts=10, base_delay=0.001, max_delay=0.005, max_unreadable_attempts=10)
    )
    first, again, other = scan_with_seed(5), scan_with_seed(5), scan_with_seed(6)
    assert first == again
    assert sum(first.values()) >= 5
    assert other != first


def test_the_record_of_what_was_served(
    cloud: LocalCloud, account: SandboxAccount, plan: tuple[str, list[str]]
) -> None:
    client = sandbox_client(cloud)
    plan_id, keys = plan
    get_usage(client, account, plan_id)
    assert cloud.sandbox.served_keys() == {(plan_id, key) for key in keys}
    today = account.today()
    for serving in cloud.sandbox.served:
        assert serving.daily == account.daily_usage(plan_id, serving.api_key_id, today, today)

    cloud.sandbox.reset_counters()
    cloud.sandbox.faults.add("bad-number", operation="GetUsage", count=1)
    get_usage(client, account, plan_id)
    assert len(cloud.sandbox.served_keys()) == 4  # one key's data went out spoiled
    assert [s.intact for s in cloud.sandbox.served].count(False) == 1

    # Answers that never reached the client, or that it cannot read, served nothing.
    cloud.sandbox.reset_counters()
    outcomes: dict[str, type[Exception] | None] = {
        "malformed-json": MalformedResponse,
        "connection-reset": ConnectionClosedError,
        "read-timeout": ReadTimeoutError,
        "empty-values": None,
        "missing-field": None,
    }
    for kind, error in outcomes.items():
        cloud.sandbox.faults.add(kind, operation="GetUsage", count=1, delay=HOLD)
        reader = sandbox_client(cloud, read_timeout=READ_TIMEOUT) if kind == "read-timeout" else client
        with pytest.raises(error) if error is not None else contextlib.nullcontext():
            get_usage(reader, account, plan_id)
    assert cloud.sandbox.served == []


def test_http_api_adds_lists_and_removes_faults(cloud: LocalCloud, account: SandboxAccount) -> None:
    # GIVEN a plan WHEN two faults are added over HTTP THEN each gets an id
    plan_id, _ = add_plan(account, "gold", 2)
    status, created = control(
        cloud, "POST", body={"kind": "throttle", "operation": "GetUsage", "retryAfter": 2}
    )
    assert (status, created) == (201, {"ids": [1]})
    status, created = control(
        cloud,
        "POST",
        body={"seed": 9, "faults": [{"kind": "internal-error", "probability": 0.5, "planId": plan_id}]},
    )
    assert (status, created) == (201, {"ids": [2]})

    # WHEN a call meets them THEN the listing says which fired, and what was served
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        get_usage(sandbox_client(cloud), account, plan_id)
    status, state = control(cloud, "GET")
    assert status == 200
    assert state["seed"] == 9
    assert [(f["id"], f["kind"], f["injected"]) for f in state["faults"]] == [
        (1, "throttle", 1),
        (2, "internal-error", 0),  # the throttle answered first
    ]
    assert state["faults"][0] == {
        **Fault("throttle", "GetUsage", retry_after=2).as_json(),
        "id": 1,
        "injected": 1,
    }
    assert state["injected"] == {"throttle": 1}
    assert state["served"] == {"intact": 0, "spoiled": 0}

    # WHEN they are removed, one and then all THEN they are gone, and none of this was an API call
    assert control(cloud, "DELETE", "/_sandbox/faults/1")[0] == 200
    assert [f["id"] for f in control(cloud, "GET")[1]["faults"]] == [2]
    assert control(cloud, "DELETE", "/_sandbox/faults/1") == (
        404,
        {"message": "No fault '1': GET /_sandbox/faults lists them"},
    )
    assert control(cloud, "DELETE")[1] == {"seed": 9, "faults": [], "injected": {}}
    assert cloud.sandbox.calls["GetUsage"] == 1  # the controls are not API calls


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "The body is not JSON"),
        ({"kind": "gremlins"}, "fault kind='gremlins' is not allowed: use one of throttle, internal-error"),
        ({"operation": "GetUsage"}, "fault kind=None is not allowed: it is required"),
        (
            {"kind": "throttle", "probability": 1.5},
            "fault probability=1.5 is not allowed: use a number from 0 to 1",
        ),
        ({"kind": "throttle", "count": 0}, "fault count=0 is not allowed: use a whole number of at least 1"),
        (
            {"kind": "throttle", "retryAfter": None},
            "fault retryAfter=None is not allowed: a 429 from API Gateway",
        ),
        (
            {"kind": "read-timeout", "delay": 0},
            "fault delay=0 is not allowed: use seconds above 0, at most 300",
        ),
        ({"kind": "empty-values", "operation": "GetApiKeys"}, "empty-values applies to * or GetUsage"),
        ({"kind": "bad-number", "value": "lots"}, "fault value='lots' is not allowed: use a whole number"),
        (
            {"kind": "bad-entry", "shape": "wobbly"},
            "fault shape='wobbly' is not allowed: use one of one-number",
        ),
        ({"kind": "throttle", "oops": 1}, "fault oops=1 is not allowed: known fields are count, delay"),
        ({"seed": "x", "faults": []}, "seed='x' is not allowed: use a whole number"),
        ({"faults": {"kind": "throttle"}}, "faults={'kind': 'throttle'} is not allowed: use a list"),
        ([1, 2], "fault fault=[1, 2] is not allowed: use a JSON object"),
    ],
)
def test_http_api_refuses_a_bad_fault_saying_what_is_allowed(
    cloud: LocalCloud, body: object, message: str
) -> None:
    status, answer = control(cloud, "POST", body=body)
    assert status == 400
    assert message in answer["message"]
    assert control(cloud, "GET")[1]["faults"] == []


def test_http_api_unknown_paths_and_methods(cloud: LocalCloud) -> None:
    assert control(cloud, "GET", "/_sandbox/nothing")[0] == 404
    assert control(cloud, "PATCH", "/_sandbox/faults", body={})[0] == 400
    assert control(cloud, "POST", "/_sandbox/faults/3", body={})[0] == 400


def test_every_kind_is_documented_and_checked_in_python(cloud: LocalCloud) -> None:
    import apigw_sandbox.faults as module  # noqa: PLC0415

    for kind in KINDS:
        assert f"\n{kind} " in module.__doc__ or f"\n{kind}\n" in (module.__doc__ or "")
    with pytest.raises(
        InvalidFault, match="fault operation='GetApiKeys' is not allowed: key-deleted applies"
    ):
        Fault("key-deleted", operation="GetApiKeys")
    with pytest.raises(TypeError):
        cloud.sandbox.faults.add("throttle", colour="red")


def test_switching_accounts_clears_the_faults(cloud: LocalCloud, account: SandboxAccount) -> None:
    cloud.sandbox.faults.add("throttle")
    cloud.sandbox.use_account(account)
    assert cloud.sandbox.faults.faults() == []
    assert sandbox_client(cloud).get_usage_plans()["items"] == []


def test_the_sandbox_runs_on_its_own_and_takes_faults_over_http(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "apigw_sandbox", "--port", "0", "--account", "demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        import urllib.request  # noqa: PLC0415

        request = urllib.request.Request(
            url + "/_sandbox/faults", data=json.dumps({"kind": "throttle"}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"ids": [1]}
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + "/usageplans", timeout=5)
        assert caught.value.code == 429
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
