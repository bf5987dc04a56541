"""The GetUsage paginator against the sandbox: boto3's PaginationConfig promise, kept for a map result.

The big accounts are built once per module and swapped into the sandbox per test (read only);
tests that change an account build their own.
"""

from __future__ import annotations

import base64
import json
import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.server import Request
from quota_monitor.config import ScanSettings
from quota_monitor.errors import InvalidStartingToken, MalformedUsagePage, PaginationLoop, StaleStartingToken
from quota_monitor.read.calls import ApiGatewayCalls
from quota_monitor.read.scan import scan_account
from quota_monitor.read.usage_pages import paginate_usage
from tests.usage_data import DAYS, END, START, add_plan, rewrite_usage

SIZES = (0, 1, 499, 500, 501, 1_234)
SMALL = 10  # a plan small enough for every MaxItems x PageSize combination


@pytest.fixture(scope="module")
def shared_account() -> SandboxAccount:
    account = SandboxAccount(seed=11)
    rng = random.Random(11)
    for size in (*SIZES, SMALL, 23):
        add_plan(account, f"plan-{size}", size, rng)
    return account


@pytest.fixture
def sandbox(cloud: LocalCloud, shared_account: SandboxAccount) -> LocalCloud:
    cloud.sandbox.use_account(shared_account)
    return cloud


def plan(size: int) -> str:
    return f"plan-{size}"


def paginate(client: Any, plan_id: str, **config: Any) -> Any:
    return paginate_usage(client, usagePlanId=plan_id, startDate=START, endDate=END, PaginationConfig=config)


def walk_by_hand(client: Any, plan_id: str, **params: Any) -> dict[str, list[list[int]]]:
    """GetUsage page by page, following ``position``; no key may come twice."""
    merged: dict[str, list[list[int]]] = {}
    position = None
    while True:
        call = {"usagePlanId": plan_id, "startDate": START, "endDate": END, **params}
        if position:
            call["position"] = position
        page = client.get_usage(**call)
        for key_id, daily in page["items"].items():
            assert key_id not in merged, f"{key_id} came on two pages"
            merged[key_id] = daily
        position = page.get("position")
        if not position:
            return merged


def resume_to_end(client: Any, plan_id: str, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call after call, each resuming from the last NextToken (cycling through ``configs``)."""
    results: list[dict[str, Any]] = []
    token = None
    for call in range(10_000):
        config = dict(configs[call % len(configs)])
        if token is not None:
            config["StartingToken"] = token
        result = paginate(client, plan_id, **config).build_full_result()
        results.append(result)
        token = result.get("NextToken")
        if token is None:
            return results
    raise AssertionError("NextToken never ran out")


def concatenated(results: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [item for result in results for item in result["items"].items()]


def get_usage_calls(cloud: LocalCloud) -> list[Request]:
    return [request for request in cloud.sandbox.requests if request.operation == "GetUsage"]


# -- the same as walking the pages by hand ---------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_identical_to_walking_the_pages_by_hand(sandbox: LocalCloud, apigateway: Any, size: int) -> None:
    # By hand at the service's default page size (25); the paginator at its default (500).
    expected = walk_by_hand(apigateway, plan(size))
    assert set(expected) == set(sandbox.account.plans[plan(size)].key_ids)
    sandbox.sandbox.reset_counters()

    pages = list(paginate(apigateway, plan(size)))
    assert len(pages) == max(1, math.ceil(size / 500))
    assert [request.query["limit"] for request in get_usage_calls(sandbox)] == ["500"] * len(pages)
    for page in pages:
        assert (page["usagePlanId"], page["startDate"], page["endDate"]) == (plan(size), START, END)
    assert "position" not in pages[-1]
    from_pages = concatenated([{"items": page["items"]} for page in pages])
    assert len(from_pages) == size  # no key on two pages
    assert dict(from_pages) == expected

    result = paginate(apigateway, plan(size)).build_full_result()
    assert result == {"usagePlanId": plan(size), "startDate": START, "endDate": END, "items": expected}


def test_merged_items_is_the_full_result_without_the_envelope(sandbox: LocalCloud, apigateway: Any) -> None:
    pages = paginate(apigateway, plan(501), PageSize=100)
    assert pages.merged_items() == walk_by_hand(apigateway, plan(501), limit=500)
    assert pages.service_pages == 6
    assert pages.resume_token is None


def test_the_monitors_rate_limited_client_pages_the_same(sandbox: LocalCloud, api: ApiGatewayCalls) -> None:
    result = paginate(api, plan(1_234)).build_full_result()
    assert len(result["items"]) == 1_234
    assert api.stats.calls["get_usage"] == 3


# -- MaxItems x PageSize around page boundaries ----------------------------------------------------


def boundary_cases(total: int, page_sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    cases = set()
    for page_size in page_sizes:
        for max_items in (
            1,
            page_size - 1,
            page_size,
            page_size + 1,
            2 * page_size - 1,
            2 * page_size,
            2 * page_size + 1,
            total - 1,
            total,
            total + 1,
        ):
            if max_items >= 1:
                cases.add((page_size, max_items))
    return sorted(cases)


@pytest.mark.parametrize(
    ("page_size", "max_items"), boundary_cases(SMALL, (1, 2, 3, 4, 5, 6, 9, 10, 11, 500))
)
def test_max_items_and_page_size_around_page_boundaries(
    sandbox: LocalCloud, apigateway: Any, page_size: int, max_items: int
) -> None:
    order = list(walk_by_hand(apigateway, plan(SMALL), limit=500).items())
    sandbox.sandbox.reset_counters()

    first = paginate(apigateway, plan(SMALL), MaxItems=max_items, PageSize=page_size).build_full_result()

    returned = min(max_items, SMALL)
    assert list(first["items"].items()) == order[:returned]
    assert ("NextToken" in first) == (max_items < SMALL)
    # Like botocore: no call beyond the page that reaches MaxItems, even on a page boundary.
    calls = get_usage_calls(sandbox)
    assert len(calls) == math.ceil(returned / page_size)
    assert {request.query["limit"] for request in calls} == {str(page_size)}

    chunks = resume_to_end(apigateway, plan(SMALL), [{"MaxItems": max_items, "PageSize": page_size}])
    assert concatenated(chunks) == order
    assert [len(chunk["items"]) for chunk in chunks[:-1]] == [max_items] * (len(chunks) - 1)
    assert 1 <= len(chunks[-1]["items"]) <= max_items


@pytest.mark.parametrize(
    ("size", "max_items"),
    [(499, 499), (499, 500), (500, 499), (500, 500), (500, 501), (501, 500), (501, 501)]
    + [(1_234, n) for n in (499, 500, 501, 1_000, 1_233, 1_234, 1_235)],
)
def test_max_items_at_the_service_page_boundary(
    sandbox: LocalCloud, apigateway: Any, size: int, max_items: int
) -> None:
    order = list(walk_by_hand(apigateway, plan(size), limit=500).items())
    chunks = resume_to_end(apigateway, plan(size), [{"MaxItems": max_items}])
    assert len(chunks) == max(1, math.ceil(size / max_items))
    assert concatenated(chunks) == order


def test_resuming_with_next_token_until_the_end_yields_every_key_exactly_once(
    sandbox: LocalCloud, apigateway: Any
) -> None:
    expected = walk_by_hand(apigateway, plan(1_234), limit=500)
    chunks = resume_to_end(apigateway, plan(1_234), [{"MaxItems": 97, "PageSize": 250}])

    assert len(chunks) == math.ceil(1_234 / 97)
    seen = Counter(key_id for chunk in chunks for key_id in chunk["items"])
    assert set(seen) == set(expected)
    assert set(seen.values()) == {1}
    assert dict(concatenated(chunks)) == expected
    for chunk in chunks:
        assert (chunk["usagePlanId"], chunk["startDate"], chunk["endDate"]) == (plan(1_234), START, END)


def test_a_next_token_resumes_with_another_page_size(sandbox: LocalCloud, apigateway: Any) -> None:
    """The token keeps the page size the cut page was fetched with, so changing PageSize between
    calls neither skips nor repeats keys (botocore re-reads the cut page at the new size)."""
    order = list(walk_by_hand(apigateway, plan(SMALL), limit=500).items())
    chunks = resume_to_end(
        apigateway,
        plan(SMALL),
        [{"MaxItems": 3, "PageSize": 4}, {"MaxItems": 2, "PageSize": 1}, {"MaxItems": 4, "PageSize": 500}],
    )
    assert concatenated(chunks) == order


def test_a_resume_does_not_depend_on_the_order_of_the_json_map(sandbox: LocalCloud, apigateway: Any) -> None:
    """GetUsage's ``values`` is a JSON object, whose member order is not promised: the token counts
    the keys of a page in sorted order, so a service that serializes them differently on every
    call is resumed correctly."""
    expected = walk_by_hand(apigateway, plan(23), limit=500)
    rng = random.Random(3)

    def shuffle_values(body: dict[str, Any], _: Request) -> None:
        members = list(body["values"].items())
        rng.shuffle(members)
        body["values"] = dict(members)

    rewrite_usage(sandbox, shuffle_values)
    chunks = resume_to_end(apigateway, plan(23), [{"MaxItems": 3, "PageSize": 7}])

    assert [key_id for key_id, _ in concatenated(chunks)] == sorted(expected)
    assert dict(concatenated(chunks)) == expected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the fixtures are read only
)
@given(
    size=st.sampled_from([0, 1, SMALL, 23]),
    configs=st.lists(
        st.fixed_dictionaries({"MaxItems": st.integers(1, 25), "PageSize": st.integers(1, 25)}),
        min_size=1,
        max_size=4,
    ),
)
def test_property_resumed_chunks_concatenate_to_the_full_result(
    sandbox: LocalCloud, apigateway: Any, size: int, configs: list[dict[str, int]]
) -> None:
    full = paginate(apigateway, plan(size)).build_full_result()
    chunks = resume_to_end(apigateway, plan(size), configs)
    assert concatenated(chunks) == list(full["items"].items())
    for index, chunk in enumerate(chunks):
        assert len(chunk["items"]) <= configs[index % len(configs)]["MaxItems"]


# -- tokens --------------------------------------------------------------------------------------


def b64(body: object) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_body(**changes: Any) -> dict[str, Any]:
    body = {
        "v": 1,
        "plan": plan(SMALL),
        "start": START,
        "end": END,
        "key": None,
        "position": None,
        "skip": 3,
        "limit": 5,
    }
    body.update(changes)
    return body


def test_a_forged_token_of_the_right_shape_is_accepted(sandbox: LocalCloud, apigateway: Any) -> None:
    """The reference point for the malformed tokens below: this one is fine."""
    order = list(walk_by_hand(apigateway, plan(SMALL), limit=500))
    result = paginate(apigateway, plan(SMALL), StartingToken=b64(token_body())).build_full_result()
    assert list(result["items"]) == order[3:]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "is not a NextToken issued by paginate_usage"),
        ("not a token", "is not a NextToken issued by paginate_usage"),
        ("abc", "is not a NextToken issued by paginate_usage"),
        (b64(token_body()) + "==", "is not a NextToken issued by paginate_usage"),
        (b64(token_body()) + "!", "is not a NextToken issued by paginate_usage"),
        ("A" * 5_000, "is not a NextToken issued by paginate_usage"),
        (b64(b"\xff\xfe not json"), "is not a NextToken issued by paginate_usage"),
        (b64([1, 2, 3]), "is not a version-1 NextToken"),
        (b64(token_body(v=2)), "is not a version-1 NextToken"),
        (b64(token_body(v=True)), "is not a version-1 NextToken"),
        (b64({"position": "abc", "boto_truncate_amount": 3}), "is not a version-1 NextToken"),
        (
            b64({k: v for k, v in token_body().items() if k != "skip"}),
            "has fields .*, not those of a NextToken",
        ),
        (b64(token_body(extra=1)), "has fields .*, not those of a NextToken"),
        (b64(token_body(skip=-1)), "holds an invalid key offset -1"),
        (b64(token_body(skip=5)), "holds an invalid key offset 5 for a page of 5"),
        (b64(token_body(skip="3")), "holds an invalid key offset '3'"),
        (b64(token_body(limit=0)), "holds an invalid page size 0"),
        (b64(token_body(limit=501)), "holds an invalid page size 501"),
        (b64(token_body(position=7)), "holds an invalid position 7"),
        (b64(token_body(position="")), "holds an invalid position ''"),
    ],
    ids=lambda value: value[:30] if isinstance(value, str) else None,
)
def test_a_malformed_token_is_a_clear_error_never_a_restart(
    sandbox: LocalCloud, apigateway: Any, token: str, message: str
) -> None:
    with pytest.raises(InvalidStartingToken, match=message):
        paginate(apigateway, plan(SMALL), StartingToken=token)
    assert sandbox.sandbox.calls["GetUsage"] == 0


@pytest.mark.parametrize("token", [None, 42, b"token"])
def test_a_token_that_is_not_a_string(sandbox: LocalCloud, apigateway: Any, token: object) -> None:
    if token is None:  # None means "from the start", as in botocore
        assert paginate(apigateway, plan(1), StartingToken=None).build_full_result()["items"]
        return
    with pytest.raises(InvalidStartingToken, match="is not a NextToken"):
        paginate(apigateway, plan(1), StartingToken=token)


@pytest.mark.parametrize(
    ("request_changes", "issued", "asked"),
    [
        ({"usagePlanId": plan(23)}, f"usage plan '{plan(SMALL)}'", f"usage plan '{plan(23)}'"),
        ({"startDate": "2026-03-02"}, f"'{START}' to '{END}'", f"'2026-03-02' to '{END}'"),
        ({"endDate": "2026-03-04"}, f"'{START}' to '{END}'", f"'{START}' to '2026-03-04'"),
        ({"keyId": "k1"}, f"'{START}' to '{END}', not", "key 'k1'"),
    ],
)
def test_a_foreign_token_is_a_clear_error(
    sandbox: LocalCloud, apigateway: Any, request_changes: dict[str, str], issued: str, asked: str
) -> None:
    token = paginate(apigateway, plan(SMALL), MaxItems=3).build_full_result()["NextToken"]
    request = {"usagePlanId": plan(SMALL), "startDate": START, "endDate": END, **request_changes}
    with pytest.raises(InvalidStartingToken, match="StartingToken was issued for") as caught:
        paginate_usage(apigateway, **request, PaginationConfig={"StartingToken": token})
    assert issued in str(caught.value)
    assert asked in str(caught.value)


def test_a_token_for_a_page_that_shrank_is_an_error_not_a_silent_skip(
    cloud: LocalCloud, apigateway: Any
) -> None:
    add_plan(cloud.account, "shrinking", 5, random.Random(5))
    token = paginate(apigateway, "shrinking", MaxItems=3, PageSize=5).build_full_result()["NextToken"]
    for key_id in sorted(cloud.account.plans["shrinking"].key_ids)[:3]:
        cloud.account.delete_api_key(key_id)

    with pytest.raises(StaleStartingToken, match="has 2 keys now, but 3 were already returned"):
        paginate(apigateway, "shrinking", StartingToken=token).build_full_result()


# -- a key on two pages ----------------------------------------------------------------------------


def put_key_beside(cloud: LocalCloud, key_id: str, daily: list[list[int]], *, beside: str) -> None:
    """The GetUsage page that holds key ``beside`` also carries ``key_id`` with ``daily``."""

    def duplicate(body: dict[str, Any], _: Request) -> None:
        if beside in body["values"]:
            body["values"] = {key_id: daily, **body["values"]}

    rewrite_usage(cloud, duplicate)


def test_a_key_split_across_pages_is_merged_not_overwritten(sandbox: LocalCloud, apigateway: Any) -> None:
    order = walk_by_hand(apigateway, plan(SMALL), limit=500)
    keys = list(order)
    split = keys[3]  # the last key of the first page of 4
    first_seen = order[split]
    # Seen again moments later: more used on day 1, less on day 2 (impossible, but either page
    # may be the later one), and an extension on day 3 (more remaining).
    again = [
        [first_seen[0][0] + 7, first_seen[0][1] - 7],
        [max(0, first_seen[1][0] - 1), first_seen[1][1] + 1],
        [first_seen[2][0], first_seen[2][1] + 100],
    ]
    put_key_beside(sandbox, split, again, beside=keys[4])  # and on the second page

    pages = paginate(apigateway, plan(SMALL), PageSize=4)
    page_list = list(pages)
    assert [split in page["items"] for page in page_list] == [True, True, False]
    assert pages.duplicate_keys == {split}

    result = paginate(apigateway, plan(SMALL), PageSize=4).build_full_result()
    assert set(result["items"]) == set(order)
    assert result["items"][split] == [
        [first_seen[0][0] + 7, first_seen[0][1] - 7],  # the higher used and the lower remaining
        [first_seen[1][0], first_seen[1][1]],
        [first_seen[2][0], first_seen[2][1]],
    ]
    for key_id in order.keys() - {split}:
        assert result["items"][key_id] == order[key_id]


def test_a_split_key_counts_once_towards_max_items(sandbox: LocalCloud, apigateway: Any) -> None:
    order = list(walk_by_hand(apigateway, plan(SMALL), limit=500))
    split = order[3]
    put_key_beside(sandbox, split, [[1, 9_999]] * DAYS, beside=order[4])

    first = paginate(apigateway, plan(SMALL), PageSize=4, MaxItems=5).build_full_result()
    assert list(first["items"]) == order[:5]  # the split key was not a 6th item
    rest = paginate(apigateway, plan(SMALL), PageSize=4, StartingToken=first["NextToken"]).build_full_result()
    assert list(rest["items"]) == order[5:]


def test_a_split_key_whose_days_disagree_is_an_error(sandbox: LocalCloud, apigateway: Any) -> None:
    keys = list(walk_by_hand(apigateway, plan(SMALL), limit=500))
    put_key_beside(sandbox, keys[1], [[1, 2]], beside=keys[4])

    with pytest.raises(MalformedUsagePage, match=f"key {keys[1]} appears on two pages"):
        paginate(apigateway, plan(SMALL), PageSize=4).build_full_result()


def test_the_scan_reports_a_split_key_once_with_the_merged_numbers(
    cloud: LocalCloud, api: ApiGatewayCalls
) -> None:
    account = cloud.account
    add_plan(account, "split", 6, random.Random(6))
    key_ids = sorted(account.plans["split"].key_ids)
    today = account.today()
    # DAY quota: the scan reads yesterday (to see the counter reset) and today.
    account.record_usage("split", key_ids[2], 40)
    put_key_beside(cloud, key_ids[2], [[0, 10_000], [55, 9_945]], beside=key_ids[3])

    result = scan_account(api, now=account.now(), settings=ScanSettings(page_size=3))

    assert result.failures == ()
    reported = [key for key in result.keys if key.api_key_id == key_ids[2]]
    assert [(key.used, key.remaining) for key in reported] == [(55, 9_945)]
    assert sorted(key.api_key_id for key in result.keys) == key_ids
    assert account.daily_usage("split", key_ids[2], today, today) == [[40, 9_960]]


def test_a_split_key_whose_days_disagree_fails_that_key_not_its_plan(
    cloud: LocalCloud, api: ApiGatewayCalls
) -> None:
    account = cloud.account
    add_plan(account, "split", 6, random.Random(6))
    key_ids = sorted(account.plans["split"].key_ids)
    plan_id = account.plans["split"].id
    # The second observation of key 2 has one day where the first has two: not the same days.
    put_key_beside(cloud, key_ids[2], [[1, 2]], beside=key_ids[3])

    result = scan_account(api, now=account.now(), settings=ScanSettings(page_size=3))

    (failure,) = result.failures
    assert (failure.resource, failure.resource_id, failure.usage_plan_id) == ("api-key", key_ids[2], plan_id)
    assert "appears on two pages" in failure.message
    assert sorted(key.api_key_id for key in result.keys) == [k for k in key_ids if k != key_ids[2]]
    today = account.today()
    for key in result.keys:
        assert key.used == account.daily_usage("split", key.api_key_id, today, today)[0][0]


def test_an_unmergeable_key_seen_three_times_fails_once_and_is_not_taken_for_unused(
    cloud: LocalCloud, api: ApiGatewayCalls
) -> None:
    account = cloud.account
    add_plan(account, "split", 6, random.Random(6))
    key_ids = sorted(account.plans["split"].key_ids)
    split = key_ids[2]

    def twice_more(body: dict[str, Any], _: Request) -> None:
        # A page a key: the split key comes on its own page, then with days that cannot be its
        # own, then again with a readable list.
        if key_ids[3] in body["values"]:
            body["values"] = {split: [[1, 2]], **body["values"]}
        if key_ids[5] in body["values"]:
            body["values"] = {split: [[0, 10_000], [55, 9_945]], **body["values"]}

    rewrite_usage(cloud, twice_more)

    result = scan_account(
        api, now=account.now(), settings=ScanSettings(page_size=1, cross_check_plan_keys=True)
    )

    assert [(failure.resource, failure.resource_id) for failure in result.failures] == [("api-key", split)]
    assert sorted(key.api_key_id for key in result.keys) == [k for k in key_ids if k != split]


# -- a repeating position ------------------------------------------------------------------------


def test_a_position_that_comes_back_stops_with_an_error(sandbox: LocalCloud, apigateway: Any) -> None:
    echoed: list[str] = []

    def echo_position(body: dict[str, Any], request: Request) -> None:
        # "The next page is this page", a few times: a paginator without the check ends instead
        # of hanging the test.
        if "position" in request.query and len(echoed) < 5:
            echoed.append(request.query["position"])
            body["position"] = request.query["position"]

    rewrite_usage(sandbox, echo_position)
    pages = paginate(apigateway, plan(SMALL), PageSize=3)
    with pytest.raises(PaginationLoop, match=f"usage plan {plan(SMALL)} returned position .* a second time"):
        list(pages)
    assert sandbox.sandbox.calls["GetUsage"] == 2


def test_a_position_cycle_over_several_pages_stops_with_an_error(
    sandbox: LocalCloud, apigateway: Any
) -> None:
    issued: list[str] = []

    def cycle(body: dict[str, Any], _: Request) -> None:
        if "position" in body:
            issued.append(body["position"])
        if len(issued) == 3:  # the third page points back at the second
            body["position"] = issued[0]

    rewrite_usage(sandbox, cycle)
    with pytest.raises(PaginationLoop):
        paginate(apigateway, plan(SMALL), PageSize=2).build_full_result()
    assert sandbox.sandbox.calls["GetUsage"] == 3


def test_a_page_without_position_ends_the_iteration(sandbox: LocalCloud, apigateway: Any) -> None:
    rewrite_usage(sandbox, lambda body, _: body.pop("position", None))
    result = paginate(apigateway, plan(SMALL), PageSize=4).build_full_result()
    assert len(result["items"]) == 4
    assert sandbox.sandbox.calls["GetUsage"] == 1


# -- PaginationConfig ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"PageSize": 0}, r"PaginationConfig PageSize=0 is not allowed: use an integer from 1 to 500"),
        ({"PageSize": 501}, r"PageSize=501 is not allowed: use an integer from 1 to 500"),
        ({"PageSize": -5}, r"PageSize=-5 is not allowed"),
        ({"PageSize": "100"}, r"PageSize='100' is not allowed"),
        ({"PageSize": 2.5}, r"PageSize=2.5 is not allowed"),
        ({"PageSize": True}, r"PageSize=True is not allowed"),
        ({"MaxItems": 0}, r"MaxItems=0 is not allowed: use an integer of at least 1"),
        ({"MaxItems": -1}, r"MaxItems=-1 is not allowed"),
        ({"MaxItems": "10"}, r"MaxItems='10' is not allowed"),
        ({"MaxResults": 10}, r"PaginationConfig keys \['MaxResults'\] are not supported"),
    ],
)
def test_pagination_config_outside_what_is_allowed_is_a_clear_error(
    sandbox: LocalCloud, apigateway: Any, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paginate(apigateway, plan(SMALL), **config)
    assert sandbox.sandbox.calls["GetUsage"] == 0


@pytest.mark.parametrize("page_size", [1, 500])
def test_page_size_limits_are_allowed(sandbox: LocalCloud, apigateway: Any, page_size: int) -> None:
    result = paginate(apigateway, plan(SMALL), PageSize=page_size).build_full_result()
    assert len(result["items"]) == SMALL
    assert sandbox.sandbox.calls["GetUsage"] == math.ceil(SMALL / page_size)


def test_pages_can_be_walked_once(sandbox: LocalCloud, apigateway: Any) -> None:
    pages = paginate(apigateway, plan(1))
    assert len(list(pages)) == 1
    with pytest.raises(RuntimeError, match="can be walked once"):
        list(pages)


def test_a_service_error_is_raised_as_botocore_raises_it(sandbox: LocalCloud, apigateway: Any) -> None:
    with pytest.raises(apigateway.exceptions.NotFoundException, match="no-such-plan"):
        paginate(apigateway, "no-such-plan").build_full_result()
