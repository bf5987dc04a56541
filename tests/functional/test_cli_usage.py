"""``quota-monitor usage`` against the sandbox: output shapes, resuming, exit codes and messages."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date, timedelta
from typing import Any

import pytest

from apigw_sandbox.account import SandboxAccount
from apigw_sandbox.local import LocalCloud
from apigw_sandbox.server import Request
from quota_monitor_cli.main import main
from tests.usage_data import DAYS, END, START, add_plan, rewrite_usage

PLAN = "cli-plan"
KEYS = 7


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's client-side rate limit, opened up: the sandbox is not the account's budget."""
    monkeypatch.setenv("APIGATEWAY_MAX_RPS", "10")
    monkeypatch.setenv("APIGATEWAY_BURST", "40")


@pytest.fixture
def key_ids(account: SandboxAccount) -> list[str]:
    add_plan(account, "other-plan", 2, random.Random(2))
    return sorted(add_plan(account, PLAN, KEYS, random.Random(1)))


def usage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``quota-monitor usage ...``; (exit code, stdout, stderr)."""
    try:
        code = main(["usage", *args])
    except SystemExit as exit_:  # argparse rejects bad arguments this way
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def the_range(*extra: str, plan: str = PLAN) -> list[str]:
    return ["--plan", plan, "--start", START, "--end", END, *extra]


def truth(account: SandboxAccount, key_id: str) -> list[list[int]]:
    return account.daily_usage(PLAN, key_id, date.fromisoformat(START), date.fromisoformat(END))


def test_json_is_the_shape_of_the_api_with_every_key(
    capsys: pytest.CaptureFixture[str], account: SandboxAccount, key_ids: list[str]
) -> None:
    code, out, err = usage(capsys, *the_range("--page-size", "3"))

    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result == {
        "usagePlanId": PLAN,
        "startDate": START,
        "endDate": END,
        "items": {key_id: truth(account, key_id) for key_id in key_ids},
    }
    assert len(out.splitlines()) == 7 + KEYS  # a key a line, not four lines a day


def test_json_for_a_plan_without_keys(capsys: pytest.CaptureFixture[str], account: SandboxAccount) -> None:
    add_plan(account, "empty", 0, random.Random(0))
    code, out, _ = usage(capsys, *the_range(plan="empty"))
    assert code == 0
    assert json.loads(out) == {"usagePlanId": "empty", "startDate": START, "endDate": END, "items": {}}


def test_one_key(capsys: pytest.CaptureFixture[str], account: SandboxAccount, key_ids: list[str]) -> None:
    code, out, _ = usage(capsys, *the_range("--key", key_ids[4]))
    assert code == 0
    assert json.loads(out)["items"] == {key_ids[4]: truth(account, key_ids[4])}


def test_max_items_prints_a_next_token_and_starting_token_resumes(
    capsys: pytest.CaptureFixture[str], account: SandboxAccount, key_ids: list[str]
) -> None:
    chunks = []
    token: str | None = None
    while True:
        resume = ["--starting-token", token] if token else []
        code, out, err = usage(capsys, *the_range("--max-items", "3", "--page-size", "2", *resume))
        assert (code, err) == (0, "")
        chunk = json.loads(out)
        chunks.append(chunk)
        token = chunk.get("NextToken")
        if token is None:
            break
        assert list(chunk) == ["usagePlanId", "startDate", "endDate", "items", "NextToken"]

    assert [len(chunk["items"]) for chunk in chunks] == [3, 3, 1]
    returned = [key_id for chunk in chunks for key_id in chunk["items"]]
    assert returned == key_ids
    merged = {key_id: daily for chunk in chunks for key_id, daily in chunk["items"].items()}
    assert merged == {key_id: truth(account, key_id) for key_id in key_ids}


def test_csv_has_a_header_and_a_row_per_key_and_day(
    capsys: pytest.CaptureFixture[str], account: SandboxAccount, key_ids: list[str]
) -> None:
    code, out, err = usage(capsys, *the_range("--csv"))

    assert (code, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["usagePlanId", "apiKeyId", "date", "used", "remaining"]
    first = date.fromisoformat(START)
    assert rows[1:] == [
        [PLAN, key_id, (first + timedelta(days=day)).isoformat(), str(used), str(remaining)]
        for key_id in key_ids
        for day, (used, remaining) in enumerate(truth(account, key_id))
    ]
    assert len(rows) == 1 + KEYS * DAYS


def test_csv_puts_the_next_token_on_stderr_and_it_resumes(
    capsys: pytest.CaptureFixture[str], key_ids: list[str]
) -> None:
    code, out, err = usage(capsys, *the_range("--csv", "--max-items", "5"))
    assert code == 0
    assert len(out.splitlines()) == 1 + 5 * DAYS
    assert err.startswith("NextToken: ")
    token = err.removeprefix("NextToken: ").strip()

    code, out, err = usage(capsys, *the_range("--csv", "--starting-token", token))
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted({row["apiKeyId"] for row in rows}) == key_ids[5:]


def test_an_unknown_plan_is_exit_1_naming_the_plan(
    capsys: pytest.CaptureFixture[str], key_ids: list[str]
) -> None:
    code, out, err = usage(capsys, *the_range(plan="no-such-plan"))
    assert (code, out) == (1, "")
    assert "usage plan no-such-plan" in err
    assert "NotFoundException" in err


def test_an_unknown_key_is_exit_1(capsys: pytest.CaptureFixture[str], key_ids: list[str]) -> None:
    code, out, err = usage(capsys, *the_range("--key", "no-such-key"))
    assert (code, out) == (1, "")
    assert f"usage plan {PLAN}" in err
    assert "no-such-key" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-13-01"], "argument --start: '2026-13-01' is not a date in the form YYYY-MM-DD"),
        (["--start", "2026-W10-1"], "'2026-W10-1' is not a date in the form YYYY-MM-DD"),
        (["--end", "03/01/2026"], "argument --end: '03/01/2026' is not a date in the form YYYY-MM-DD"),
        (["--end", "2026-02-30"], "'2026-02-30' is not a date"),
        (["--start", END, "--end", START], f"--start {END} is after --end {START}"),
        (["--page-size", "0"], "argument --page-size: 0 is not allowed: use a whole number from 1 to 500"),
        (
            ["--page-size", "501"],
            "argument --page-size: 501 is not allowed: use a whole number from 1 to 500",
        ),
        (["--page-size", "ten"], "argument --page-size: 'ten' is not a whole number from 1 to 500"),
        (["--max-items", "0"], "argument --max-items: 0 is not allowed: use a whole number of at least 1"),
        (["--starting-token", "garbage!"], "--starting-token: StartingToken 'garbage!' is not a NextToken"),
        (
            ["--starting-token", "eyJ2IjoyfQ"],
            "--starting-token: StartingToken 'eyJ2IjoyfQ' is not a version-1",
        ),
        (["--json", "--csv"], "argument --csv: not allowed with argument --json"),
    ],
)
def test_bad_arguments_are_exit_2_with_what_is_allowed(
    capsys: pytest.CaptureFixture[str], cloud: LocalCloud, key_ids: list[str], args: list[str], message: str
) -> None:
    code, out, err = usage(capsys, *the_range(), *args)
    assert (code, out) == (2, "")
    assert message in err
    assert cloud.sandbox.calls["GetUsage"] == 0


def test_a_token_from_another_plan_is_exit_2(capsys: pytest.CaptureFixture[str], key_ids: list[str]) -> None:
    _, out, _ = usage(capsys, *the_range("--max-items", "1", plan="other-plan"))
    token = json.loads(out)["NextToken"]

    code, out, err = usage(capsys, *the_range("--starting-token", token))
    assert (code, out) == (2, "")
    assert "StartingToken was issued for usage plan 'other-plan'" in err
    assert f"not for usage plan '{PLAN}'" in err


@pytest.mark.parametrize(
    ("daily", "message"),
    [
        ([[1, 9], [None, 9], [1, 8]], "day 2: used None is not a whole number from 0 to 2**63 - 1"),
        ([[1, 9], [2, 7]], "2 daily entries for a range of 3 days"),
        ([[1, 9], [-2, 7], [1, 8]], "day 2: used -2 is not a whole number from 0 to 2**63 - 1"),
        ([[1, 9], [2], [1, 8]], r"day 2: entry [2] is not [used, remaining]"),
    ],
)
@pytest.mark.parametrize("output", ["--json", "--csv"])
def test_usage_data_that_cannot_be_read_is_exit_1_never_printed(
    capsys: pytest.CaptureFixture[str],
    cloud: LocalCloud,
    key_ids: list[str],
    daily: list[Any],
    message: str,
    output: str,
) -> None:
    rewrite_usage(cloud, lambda body, _: body["values"].update({key_ids[2]: daily}))
    code, out, err = usage(capsys, *the_range(output))
    assert (code, out) == (1, "")
    assert f"usage plan {PLAN}, key {key_ids[2]}" in err
    assert message in err


def test_a_null_remaining_is_printed_as_null_not_zero(
    capsys: pytest.CaptureFixture[str], cloud: LocalCloud, key_ids: list[str]
) -> None:
    """What AWS reports as remaining for a plan without a quota is unconfirmed: passed through."""
    rewrite_usage(cloud, lambda body, _: body["values"].update({key_ids[0]: [[5, None]] * DAYS}))
    code, out, _ = usage(capsys, *the_range())
    assert code == 0
    assert json.loads(out)["items"][key_ids[0]] == [[5, None]] * DAYS

    code, out, _ = usage(capsys, *the_range("--csv", "--key", key_ids[0]))
    assert code == 0
    assert out.splitlines()[1] == f"{PLAN},{key_ids[0]},{START},5,"


def test_a_key_on_two_pages_is_merged_with_a_warning(
    capsys: pytest.CaptureFixture[str], cloud: LocalCloud, account: SandboxAccount, key_ids: list[str]
) -> None:
    split = key_ids[0]
    higher = [[used + 10, remaining - 10] for used, remaining in truth(account, split)]

    def second_page_repeats_the_key(body: dict[str, Any], _: Request) -> None:
        if split not in body["values"]:
            body["values"][split] = higher

    rewrite_usage(cloud, second_page_repeats_the_key)
    code, out, err = usage(capsys, *the_range("--page-size", "4"))

    assert code == 0
    assert f"warning: key {split} appeared on two GetUsage pages; merged" in err
    items = json.loads(out)["items"]
    assert sorted(items) == key_ids
    assert items[split] == higher


def test_a_repeating_position_is_exit_1(
    capsys: pytest.CaptureFixture[str], cloud: LocalCloud, key_ids: list[str]
) -> None:
    first: list[str] = []

    def stuck(body: dict[str, Any], _: Request) -> None:
        if "position" in body:
            first.append(body["position"])
            body["position"] = first[0]

    rewrite_usage(cloud, stuck)
    code, out, err = usage(capsys, *the_range("--page-size", "2"))
    assert (code, out) == (1, "")
    assert f"GetUsage for usage plan {PLAN} returned position" in err
    assert "a second time" in err
    assert cloud.sandbox.calls["GetUsage"] == 2


def test_an_answer_that_cannot_be_read_exits_1_naming_the_plan(
    cloud: LocalCloud, key_ids: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIGATEWAY_MAX_ATTEMPTS", "1")
    cloud.sandbox.faults.add("malformed-json", operation="GetUsage")
    code, out, err = usage(capsys, *the_range())
    assert (code, out) == (1, "")
    assert f"quota-monitor: error: usage plan {PLAN}: GetUsage: the response body is not JSON" in err
