"""``quota-monitor`` as scripts and pipes meet it: the real command in a subprocess, against the
sandbox on loopback (the test process serves it; the environment the fixtures set points boto3 at
it). Pipes closed early, filters, CSV, the check mode, and giving up on an endpoint that refuses
connections.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from apigw_sandbox.seed import seed_demo_account, seed_key_usage
from quota_monitor_cli.main import main
from quota_monitor_cli.render import COLUMNS
from tests.conftest import CLOSED_PORT
from tests.contracts import JSON_FIELDS
from tests.fault_support import add_plan
from tests.infra_support import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable

    from apigw_sandbox.account import SandboxAccount
    from apigw_sandbox.local import LocalCloud
    from apigw_sandbox.seed import SeededAccount

COMMAND = [sys.executable, "-m", "quota_monitor_cli"]
BOX_DRAWING = re.compile("[\u2500-\u257f]")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's client-side rate limit, opened up: the sandbox is not the account's budget."""
    monkeypatch.setenv("APIGATEWAY_MAX_RPS", "10")
    monkeypatch.setenv("APIGATEWAY_BURST", "40")


@dataclass
class Ran:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.out)


def environment(**extra: str) -> dict[str, str]:
    """This test's environment (the fixtures point it at the sandbox), Python buffering its output
    as it does by default, and ``extra``."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return {**env, **extra}


def quota_monitor(*args: str, **env: str) -> Ran:
    """``quota-monitor ARGS`` in a subprocess, in this test's environment plus ``env``."""
    done = subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        cwd=REPO_ROOT,
        env=environment(**env),
        timeout=60,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr.decode("utf-8"))


def in_process_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The unfiltered scan, most used first: the oracle the filters are checked against."""
    assert main(["scan", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


# -- pipes ----------------------------------------------------------------------------------------


def run_into_closed_pipe(*args: str, stderr_too: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader has already gone (``| true``, or a reader that quit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*COMMAND, *args],
            stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE,
            cwd=REPO_ROOT,
            env=environment(),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def add_many_keys(account: SandboxAccount, keys: int = 1_200) -> None:
    """More output than a pipe holds (64 KiB), so that the command is still writing when the reader quits."""
    for plan in range(3):
        add_plan(account, f"plan-{plan}", keys // 3)


@pytest.mark.parametrize(
    ("output", "env"),
    [
        ("plain", {}),
        ("table", {}),
        ("json", {}),
        ("csv", {}),
        # Unbuffered, a write the closed pipe took in part would end without an error (main.py).
        ("plain", {"PYTHONUNBUFFERED": "1"}),
    ],
)
def test_scan_into_a_reader_that_quits_after_one_line_ends_quietly_by_sigpipe(
    account: SandboxAccount, output: str, env: dict[str, str]
) -> None:
    add_many_keys(account)
    process = subprocess.Popen(
        [*COMMAND, "scan", "--output", output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=environment(**env),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == -signal.SIGPIPE
    assert first.strip()
    assert "Traceback" not in err
    assert "Error" not in err


def test_a_shell_pipeline_reports_141_like_for_any_unix_tool(account: SandboxAccount) -> None:
    add_many_keys(account)
    command = " ".join([*COMMAND, "scan", "--json"])
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -n 1"],
        capture_output=True,
        cwd=REPO_ROOT,
        env=environment(),
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (141, b"[\n", b"")


@pytest.mark.parametrize(
    "args",
    [
        ["scan"],
        ["scan", "--output", "table", "--fail-above", "90"],
        ["usage", "--plan", "@free", "--start", "2026-03-01", "--end", "2026-03-02"],
        ["usage", "--plan", "@free", "--start", "2026-03-01", "--end", "2026-03-02", "--csv"],
        ["cost", "--keys", "1000"],
    ],
)
def test_every_command_ends_quietly_when_its_reader_has_gone(
    account: SandboxAccount, args: list[str]
) -> None:
    seeded = seed_demo_account(account)
    args = [seeded.plans[arg[1:]] if arg.startswith("@") else arg for arg in args]
    done = run_into_closed_pipe(*args)
    assert done.returncode == -signal.SIGPIPE
    assert done.stderr == b""  # no traceback; the summary line was never reached


def test_the_demo_ends_quietly_when_its_reader_has_gone() -> None:
    done = run_into_closed_pipe("demo")
    assert (done.returncode, done.stderr) == (-signal.SIGPIPE, b"")


def test_a_closed_stderr_ends_quietly_too(account: SandboxAccount) -> None:
    """``quota-monitor scan 2>&1 | head``: the summary line on stderr meets the closed pipe as well."""
    seed_demo_account(account)
    assert run_into_closed_pipe("scan", "--csv", stderr_too=True).returncode == -signal.SIGPIPE


# -- output formats -------------------------------------------------------------------------------

AWKWARD_PLAN = 'Partners, "EU"\nsecond line'
AWKWARD_KEYS = (
    "Acme, Inc.",
    'say "hi", twice ""',
    "two\nlines",
    "crlf\r\nend",
    "Zürich \u2013 東京 😀",
    "[bold]not markup[/]",
    "\x1b[31mred",
    "line\u2028separator",
    "  spaces around  ",
    "=1+1",
)


def seed_awkward(account: SandboxAccount) -> dict[str, str]:
    """A plan and keys whose names need quoting or escaping; key id -> name."""
    plan_id = account.create_usage_plan(AWKWARD_PLAN, limit=1_000, period="WEEK")
    no_quota = account.create_usage_plan("no quota, none", limit=None, period=None)
    names = {}
    for index, name in enumerate(AWKWARD_KEYS):
        key_id = account.create_api_key(name)
        account.attach_key(plan_id, key_id)
        seed_key_usage(account, plan_id, key_id, utilization=10.0 * index, rng=random.Random(index))
        names[key_id] = name
    key_id = account.create_api_key("free, for now")
    account.attach_key(no_quota, key_id)
    names[key_id] = "free, for now"
    return names


def test_csv_is_the_json_contract_a_row_a_key_with_awkward_names_intact(account: SandboxAccount) -> None:
    names = seed_awkward(account)
    as_csv, as_json = quota_monitor("scan", "--csv"), quota_monitor("scan", "--json")
    assert (as_csv.code, as_json.code) == (0, 0)
    # Bytes decoded by hand: universal newlines would turn a name's \r\n into \n.
    reader = csv.reader(io.StringIO(as_csv.out.decode("utf-8"), newline=""), strict=True)
    header, *rows = list(reader)
    assert header == JSON_FIELDS
    expected = [["" if value is None else str(value) for value in row.values()] for row in as_json.json()]
    assert rows == expected
    by_id = {row[2]: row for row in rows}
    assert {key_id: row[3] for key_id, row in by_id.items()} == names
    assert {row[1] for row in rows} == {AWKWARD_PLAN, "no quota, none"}
    no_quota = next(row for row in rows if row[3] == "free, for now")
    assert (no_quota[7], no_quota[8], no_quota[9]) == ("", "", "")  # null is an empty field


def test_plain_output_is_a_line_a_key_with_no_box_drawing_and_names_escaped(account: SandboxAccount) -> None:
    names = seed_awkward(account)
    ran = quota_monitor("scan")
    assert ran.code == 0
    lines = ran.text.splitlines()
    assert len(lines) == 1 + len(names)
    assert re.split(r"\s{2,}", lines[0]) == [column.header for column in COLUMNS]
    assert not BOX_DRAWING.search(ran.text)
    assert "\x1b" not in ran.text  # neither colour nor the key name's own escape sequence
    for key_id in names:
        assert sum(key_id in line for line in lines) == 1
    for shown in (
        "two\\nlines",
        "crlf\\r\\nend",
        "\\x1b[31mred",
        "line\\u2028separator",
        "Zürich \u2013 東京 😀",
        "[bold]not markup[/]",
    ):
        assert shown in ran.text
    assert 'Partners, "EU"\\nsecond line' in ran.text


def run_on_a_terminal(*args: str) -> str:
    """The command with stdout on a pseudo-terminal, as someone at a terminal runs it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*COMMAND, *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        env=environment(TERM="xterm-256color"),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8")


def test_a_terminal_gets_the_table_and_a_pipe_gets_plain_text(account: SandboxAccount) -> None:
    names = seed_awkward(account)
    coloured = run_on_a_terminal("scan")
    on_terminal = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert on_terminal != coloured  # in colour
    assert "┏" in on_terminal
    assert "┃ Plan" in on_terminal
    assert "[bold]not markup[/]" in on_terminal  # a name is text, never rich markup
    assert "\\x1b[31mred" in on_terminal
    assert all(key_id in on_terminal for key_id in names)
    forced = quota_monitor("scan", "--output", "table")
    assert "┏" in forced.text  # boxes on request
    assert "\x1b[" not in forced.text  # colour only on a terminal


# -- filters --------------------------------------------------------------------------------------


def key_id_of(seeded: SeededAccount, name: str) -> str:
    return seeded.key(name).key_id


FILTERS: list[tuple[list[str], Callable[[dict[str, Any]], bool], int | None]] = [
    (["--plan", "free"], lambda row: row["usagePlanName"] == "free", None),
    (["--plan", "@plan:pro"], lambda row: row["usagePlanName"] == "pro", None),
    (["--plan", "free", "--plan", "gold"], lambda row: row["usagePlanName"] in {"free", "gold"}, None),
    (["--key", "billing-client"], lambda row: row["apiKeyName"] == "billing-client", None),
    (
        ["--key", "@key:uploader", "--key", "geo-lookup"],
        lambda row: row["apiKeyName"] in {"uploader", "geo-lookup"},
        None,
    ),
    (["--period", "week"], lambda row: row["period"] == "WEEK" and row["limit"] is not None, None),
    (["--period", "MONTH"], lambda row: row["period"] == "MONTH" and row["limit"] is not None, None),
    (["--above", "96.5"], lambda row: (row["utilization"] or -1) >= 96.5, None),
    (["--above", "0"], lambda row: row["utilization"] is not None, None),
    (["--top", "5"], lambda row: True, 5),
    (
        ["--plan", "free", "--plan", "pro", "--period", "DAY", "--above", "50%", "--top", "2"],
        lambda row: (
            row["usagePlanName"] in {"free", "pro"}
            and row["period"] == "DAY"
            and (row["utilization"] or -1) >= 50
        ),
        2,
    ),
]


@pytest.mark.parametrize(("args", "matches", "top"), FILTERS, ids=[" ".join(f[0]) for f in FILTERS])
def test_each_filter_alone_and_combined(
    account: SandboxAccount,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    matches: Callable[[dict[str, Any]], bool],
    top: int | None,
) -> None:
    seeded = seed_demo_account(account)
    resolved = [
        seeded.plans[arg[6:]]
        if arg.startswith("@plan:")
        else key_id_of(seeded, arg[5:])
        if arg.startswith("@key:")
        else arg
        for arg in args
    ]
    everything = in_process_json(capsys)
    expected = [row for row in everything if matches(row)][:top]
    ran = quota_monitor("scan", "--json", *resolved)
    assert ran.code == 0, ran.err
    assert ran.json() == expected
    assert expected  # every case matches something in the demo account
    assert f"{len(expected)} of {len(everything)} keys matched, in 4 of 4 usage plans;" in ran.err


def test_at_or_above_includes_the_boundary(account: SandboxAccount) -> None:
    seed_demo_account(account)
    ran = quota_monitor("scan", "--json", "--above", "96.5")
    assert "billing-client" in {row["apiKeyName"] for row in ran.json()}  # exactly 96.5%


def test_quiet_prints_the_keys_and_nothing_on_stderr(account: SandboxAccount) -> None:
    seed_demo_account(account)
    ran = quota_monitor("scan", "--csv", "--quiet", "--top", "3")
    assert (ran.code, ran.err, len(ran.text.splitlines())) == (0, "", 4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--above", "101"], "argument --above: 101 is not allowed: use a number from 0 to 100"),
        (["--above", "lots"], "argument --above: 'lots' is not a number from 0 to 100"),
        (["--fail-above", "-1"], "argument --fail-above: -1 is not allowed: use a number from 0 to 100"),
        (["--top", "0"], "argument --top: 0 is not allowed: use a whole number of at least 1"),
        (
            ["--period", "year"],
            "argument --period: invalid choice: 'YEAR' (choose from 'DAY', 'WEEK', 'MONTH')",
        ),
        (["--output", "yaml"], "argument -o/--output: invalid choice: 'yaml'"),
        (
            ["--max-attempts", "0"],
            "argument --max-attempts: '0' is not allowed: use a whole number from 1 to 20",
        ),
    ],
)
def test_bad_filter_values_exit_2_naming_the_flag_the_value_and_what_is_allowed(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses these before anything runs: in this process, to keep the suite quick."""
    with pytest.raises(SystemExit) as exited:
        main(["scan", "--json", *args])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--plan", "glod"],
            "--plan 'glod': no usage plan has this id or name "
            "(the account's plans: 'free', 'gold', 'internal', 'pro')",
        ),
        (["--key", "nobody"], "--key 'nobody': no API key of the account has this id or name"),
    ],
)
def test_a_plan_or_key_that_names_nothing_exits_2_so_that_a_typo_cannot_pass_a_check(
    account: SandboxAccount, args: list[str], message: str
) -> None:
    seed_demo_account(account)
    ran = quota_monitor("scan", "--json", "--fail-above", "90", *args)
    assert (ran.code, ran.out) == (2, b"")
    assert f"quota-monitor: error: {message}" in ran.err


# -- the check ------------------------------------------------------------------------------------


def test_the_check_exits_3_printing_only_the_keys_at_or_above(account: SandboxAccount) -> None:
    seed_demo_account(account)
    ran = quota_monitor("scan", "--json", "--fail-above", "96.5")
    assert ran.code == 3
    assert [row["apiKeyName"] for row in ran.json()] == ["acme-mobile", "ledger-batch-1", "billing-client"]
    assert "check: 3 keys at or above 96.5% (exit 3)" in ran.err


def test_the_check_exits_0_when_no_key_is_at_or_above(account: SandboxAccount) -> None:
    seed_demo_account(account)
    ran = quota_monitor("scan", "--json", "--fail-above", "95", "--plan", "pro")
    assert (ran.code, ran.json()) == (0, [])
    assert "check: no key at or above 95%" in ran.err


def break_plan(cloud: LocalCloud, plan_id: str) -> None:
    """Every GetUsage of the plan answers with broken JSON: the whole plan is unreadable (a bad
    number would fail only the key it belongs to)."""
    cloud.sandbox.faults.add("malformed-json", operation="GetUsage", plan_id=plan_id)


def test_keys_found_win_over_a_plan_that_could_not_be_read(
    account: SandboxAccount, cloud: LocalCloud
) -> None:
    seeded = seed_demo_account(account)
    break_plan(cloud, seeded.plans["gold"])
    ran = quota_monitor("scan", "--json", "--fail-above", "96")
    assert ran.code == 3
    assert {row["apiKeyName"] for row in ran.json()} == {"acme-mobile", "billing-client"}
    assert f"error: usage-plan {seeded.plans['gold']} (gold): " in ran.err


def test_no_key_found_but_a_plan_unread_is_exit_1_not_0(account: SandboxAccount, cloud: LocalCloud) -> None:
    seeded = seed_demo_account(account)
    break_plan(cloud, seeded.plans["free"])  # acme-mobile, at 100%, is on it
    ran = quota_monitor("scan", "--json", "--fail-above", "99.5")
    assert (ran.code, ran.json()) == (1, [])
    assert "check: no key read is at or above 99.5%, but not everything could be read (exit 1)" in ran.err


# -- giving up ------------------------------------------------------------------------------------

GAVE_UP = (
    r"error: usage-plans: EndpointConnectionError: Could not connect to the endpoint URL: .+ "
    r"\(gave up after {} over \d+\.\ds\)"
)


@pytest.mark.parametrize("output", ["plain", "table", "json", "csv"])
def test_unreachable_aws_is_said_at_once_then_only_the_error_with_attempts_and_time(output: str) -> None:
    ran = quota_monitor(
        "scan", "--output", output, "--max-attempts", "3", AWS_ENDPOINT_URL_API_GATEWAY=CLOSED_PORT
    )
    assert (ran.code, ran.out) == (1, b"")  # no empty table, no []
    first, *_, last = ran.err.splitlines()
    assert first.startswith("quota-monitor: cannot reach API Gateway (EndpointConnectionError: ")
    assert first.endswith("; retrying, 3 attempts at most (--max-attempts)")
    assert re.fullmatch(GAVE_UP.format("3 attempts"), last)
    assert "keys in" not in ran.err


def test_the_bound_comes_from_the_setting_and_one_attempt_is_not_retried() -> None:
    from_setting = quota_monitor(
        "scan", AWS_ENDPOINT_URL_API_GATEWAY=CLOSED_PORT, APIGATEWAY_MAX_ATTEMPTS="2"
    )
    assert re.fullmatch(GAVE_UP.format("2 attempts"), from_setting.err.splitlines()[-1])
    once = quota_monitor("scan", "--max-attempts", "1", AWS_ENDPOINT_URL_API_GATEWAY=CLOSED_PORT)
    assert re.fullmatch(GAVE_UP.format("1 attempt"), once.err.strip())  # no "retrying" line


def test_usage_gives_up_the_same_way() -> None:
    ran = quota_monitor(
        "usage",
        *("--plan", "p1", "--start", "2026-03-01", "--end", "2026-03-02", "--max-attempts", "2"),
        AWS_ENDPOINT_URL_API_GATEWAY=CLOSED_PORT,
    )
    assert (ran.code, ran.out) == (1, b"")
    first, last = ran.err.splitlines()
    assert first.startswith("quota-monitor: cannot reach API Gateway")
    assert re.fullmatch(
        r"quota-monitor: error: usage plan p1: EndpointConnectionError: .+ "
        r"\(gave up after 2 attempts over \d+\.\ds\)",
        last,
    )


# -- help -----------------------------------------------------------------------------------------


def test_help_and_the_readme_document_every_exit_code() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for args in (["--help"], ["scan", "--help"]):
        ran = quota_monitor(*args)
        assert ran.code == 0
        codes = re.findall(r"^  (\d+) ", ran.text.split("exit codes:")[1], flags=re.MULTILINE)
        assert codes == ["0", "1", "2", "3", "130", "141"]
        for code in codes:
            assert re.search(rf"^\| `{code}` \|", readme, flags=re.MULTILINE), code


def test_ctrl_c_ends_the_scan_at_once_without_a_traceback_or_reading_the_rest(
    account: SandboxAccount, cloud: LocalCloud
) -> None:
    # GIVEN an account of 40 plans, read at one call a second: most of a minute
    plans, rate = 40, 1
    for n in range(plans):
        add_plan(account, f"plan-{n:02d}", 1)
    # The command as an interactive shell starts it, with Ctrl-C at its default. A test runner
    # started in the background by a script has SIGINT ignored (POSIX shells do that to background
    # jobs), every command it starts inherits that, and main.py rightly keeps an inherited SIG_IGN.
    with_ctrl_c = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", with_ctrl_c, *COMMAND, "scan", "--output", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=environment(APIGATEWAY_MAX_RPS=str(rate), APIGATEWAY_BURST="1"),
    )
    try:
        # WHEN Ctrl-C comes once the plans are being read (the command ends by itself if it never is)
        while cloud.sandbox.calls["GetUsage"] < 2 and process.poll() is None:
            time.sleep(0.05)
        assert cloud.sandbox.calls["GetUsage"] >= 2, "the scan never started reading plans"
        process.send_signal(signal.SIGINT)
        # Waited for twice as long as reading every plan would take: a command that went on reading
        # has ended by then, and the checks below say so; a shorter wait would measure the machine.
        out, err = process.communicate(timeout=2 * (plans + 2) / rate)
    finally:
        process.kill()
    # THEN it ends killed by SIGINT, as Unix tools do, says so, and reads no more plans
    assert process.returncode == -signal.SIGINT
    assert "interrupted" in err.decode()
    assert "Traceback" not in err.decode()
    assert out == b""
    assert cloud.sandbox.calls["GetUsage"] < 10
