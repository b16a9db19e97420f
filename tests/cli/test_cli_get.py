"""``connmgr get`` over loopback: counting retries, one countdown per wait, words, output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cli_helpers import ROOT, run, run_merged, run_on_tty

from connmgr import cli
from connmgr.commands.get import expected_length
from connmgr.commands.messages import describe_failure, host_and_port
from connmgr.errors import ConnectionFailedError, DNSError, OfflineError, ServerError

COUNTDOWN = re.compile(r"^.* in \d+(\.\d)? s$")
ANSI = re.compile(r"\x1b\[")


def get(capsys, *args: str) -> tuple[int, str, str]:
    """``connmgr get ARGS`` in this process (quicker than a subprocess): code, out, err."""
    code = cli.main(["get", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def countdown_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if COUNTDOWN.match(line)]


# -- retries: k/R ------------------------------------------------------------------------


def test_a_503_with_three_retries_counts_1_2_3_of_3_and_never_4(server, listening_port):
    done = run(
        "get", server.url_for("/status/503"), "--retries", "3", "--retry-delay", "0.02",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    err = done.stderr
    assert [re.match(r"retry (\d/\d)", line).group(1) for line in countdown_lines(err)] == [
        "1/3", "2/3", "3/3",
    ]  # fmt: skip
    assert "/4" not in err
    assert re.findall(r"attempt (\d) failed", err) == ["1", "2", "3"]
    closing = err.splitlines()[-1]
    assert re.fullmatch(r"  \(ServerError after \d+\.\d\d s and 3 retries; exit code 5\)", closing)
    assert "attempts" not in err  # nothing to contradict the retry count


def test_a_success_after_a_retry_says_so_once(server, listening_port, capsys):
    server.reset()
    code, out, err = get(
        capsys, server.url_for("/flaky/once?fail=1"), "--retry-delay", "0.01",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert code == 0, err
    assert out == "ok"
    assert [line.split(" in ")[0] for line in countdown_lines(err)] == ["retry 1/3"]
    assert re.fullmatch(r"200 OK · 2 bytes · \d+ ms · 1 retry", err.splitlines()[-1])


def test_no_retries_means_no_retry_words(server, capsys):
    code, _out, err = get(capsys, server.url_for("/status/503"), "--retries", "0")
    assert code == 5
    assert "retr" not in err.replace("Try again", "")
    assert err.splitlines()[-1].endswith("; exit code 5)")


# -- waits: one countdown each -------------------------------------------------------------


def test_each_429_pause_gets_exactly_one_countdown(server, listening_port, capsys):
    code, _out, err = get(
        capsys, server.url_for("/status/429?retry_after=0.2"), "--retries", "2",
        "--retry-delay", "0.01", "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert code == 10, err
    # Two waits (before retry 1 and retry 2), one countdown each; the third 429
    # ends the request, so its pause is never waited for and gets none.
    assert [line.split(" in ")[0] for line in countdown_lines(err)] == ["retry 1/2", "retry 2/2"]
    assert "sending again" not in err
    assert err.count("paused for 0.2 s") == 2


def test_a_429_without_retry_after_counts_down_to_the_end_of_the_pause(
    server, listening_port, capsys
):
    # No Retry-After: the origin pauses for its own default (1 s), longer than the 0.01 s
    # backoff, so the retry goes when the pause ends. One countdown, to that moment.
    server.reset()
    code, _out, err = get(
        capsys, server.url_for("/flaky/pause?fail=1&status=429"), "--retry-delay", "0.01",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert code == 0, err
    lines = countdown_lines(err)
    assert len(lines) == 1 and lines[0].startswith("retry 1/3 in "), err
    assert float(lines[0].split(" in ")[1].split()[0]) >= 0.5


# -- words -------------------------------------------------------------------------------


def test_a_refused_port_on_a_host_that_is_up_says_connection_refused(closed_port, listening_port):
    done = run(
        "get", f"http://127.0.0.1:{closed_port}/", "--retries", "1", "--retry-delay", "0.01",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert f"error: Could not connect to 127.0.0.1:{closed_port} (connection refused)." in (
        done.stderr
    )
    assert "network connection" not in done.stderr.lower()


def test_a_refusal_is_still_a_refusal_when_the_probe_fails_too(closed_port):
    # The probe (the same closed port) says offline and the retry is gated as offline,
    # but the host answered the first attempt with a refusal: that is what happened.
    done = run(
        "get", f"http://127.0.0.1:{closed_port}/", "--retries", "1", "--retry-delay", "0.01",
        "--probe", f"127.0.0.1:{closed_port}",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert "(connection refused)" in done.stderr
    assert "There is no network connection" not in done.stderr


def test_no_network_is_said_when_the_monitor_says_offline(closed_port):
    done = run(
        "get", "http://nothing.invalid/", "--retries", "1", "--retry-delay", "0.01",
        "--probe", f"127.0.0.1:{closed_port}",
    )  # fmt: skip
    assert done.returncode in (6, 11), done.stderr
    if done.returncode == 11:  # the retry was gated: the monitor had said offline
        assert "error: There is no network connection." in done.stderr


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("OFFLINE", "There is no network connection."),
        ("LIMITED", "Not sent: this network does not reach the internet."),
        ("CAPTIVE_PORTAL", "Not sent: a network login page (captive portal) is in the way."),
        ("ONLINE", "Not sent: the network was unreachable a moment ago"),
        (None, "Not sent: the network was unreachable a moment ago"),
    ],
)
def test_offline_words_follow_the_monitor(network, expected):
    words = describe_failure(OfflineError("offline"), url="https://api.example/x", network=network)
    assert words.message.startswith(expected)
    assert isinstance(words.error, OfflineError)
    if network != "OFFLINE":
        assert "no network" not in words.message.lower()


def test_refusals_win_over_a_later_offline_gate_and_other_errors_keep_their_words():
    refused = ConnectionFailedError("refused", kind="refused", url="http://[::1]:8080/")
    words = describe_failure(
        OfflineError("gated"), url="http://[::1]:8080/x", network="OFFLINE", earlier=[refused]
    )
    assert words.error is refused
    assert words.message == "Could not connect to [::1]:8080 (connection refused)."
    dns = DNSError("no such host", url="http://nothing.invalid/")
    assert describe_failure(dns, url="http://nothing.invalid/", network="ONLINE").error is dns
    server = ServerError("503", status=503)
    words = describe_failure(server, url="http://h/", network="OFFLINE", earlier=[refused])
    assert words.error is server and words.message == server.user_message


def test_host_and_port_fills_in_the_scheme_port():
    assert host_and_port("http://127.0.0.1:1/x") == "127.0.0.1:1"
    assert host_and_port("https://example.test/x") == "example.test:443"
    assert host_and_port("http://example.test") == "example.test:80"
    assert host_and_port("http://[::1]/") == "[::1]:80"
    assert host_and_port("http://127.0.0.1:99999/") == "http://127.0.0.1:99999/"  # unreadable
    assert host_and_port("no scheme") == "no scheme"


# -- output --------------------------------------------------------------------------------


def test_piped_together_the_status_line_starts_on_its_own_line(server):
    done = run_merged("get", server.url_for("/ok"))
    assert done.returncode == 0
    first, second = done.stdout.splitlines()[:2]
    assert first == "ok" and second.startswith("200 OK · 2 bytes")


def test_piped_apart_the_body_is_byte_for_byte(server):
    done = run("get", server.url_for("/ok"))
    assert done.stdout == "ok" and done.stderr.startswith("200 OK")
    assert not ANSI.search(done.stderr)


def test_a_body_cut_off_mid_stream_is_an_error_after_what_arrived(server):
    done = run_merged(
        "get", server.url_for("/stall-body?seconds=5&bytes=100"), "--timeout", "1,0.3,5",
        "--retries", "0",
    )  # fmt: skip
    assert done.returncode == 8, done.stdout
    body, rest = done.stdout.split("\n", 1)
    assert body == "x" * 50
    assert "error: " in rest and "(50 bytes of the body received)" in rest


def test_the_body_streams_to_a_file(server, tmp_path):
    target = tmp_path / "body.bin"
    done = run("get", server.url_for("/drip?bytes=5&interval=0.01"), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == b"xxxxx" and done.stdout == ""
    assert "5 bytes" in done.stderr


def test_an_unwritable_output_file_is_an_error_in_words(server, tmp_path):
    done = run("get", server.url_for("/ok"), "-o", str(tmp_path / "no" / "such" / "dir"))
    assert done.returncode == 1 and "could not write" in done.stderr


def test_help_points_to_documentation_that_exists(capsys):
    for args in (["--help"], ["get", "--help"], ["check", "--help"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(args)
        assert stopped.value.code == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
        found = re.search(r"Documentation: (\S+) \(and 'python -m pydoc connmgr.cli'\)", text)
        assert found, text[-400:]
        assert Path(found.group(1)).is_file()
        assert "http://" not in text[found.start() :] and "https://" not in text[found.start() :]


def test_a_bad_retry_delay_is_a_usage_error(server, capsys):
    code, _out, err = get(capsys, server.url_for("/ok"), "--retry-delay", "-1")
    assert code == 64 and "base_delay" in err


# -- on a terminal -------------------------------------------------------------------------


def test_on_a_terminal_a_spinner_waits_for_the_headers(server):
    done = run_on_tty("get", server.url_for("/stall-headers?seconds=0.4"))
    assert done.returncode == 0, done.tty
    assert "waiting for the response" in done.tty
    assert re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", done.tty)  # rich's "dots" spinner frames
    assert done.stdout == b"ok"


def test_on_a_terminal_the_body_gets_a_progress_bar_with_bytes_rate_and_eta(server):
    done = run_on_tty("get", server.url_for("/drip?bytes=30&interval=0.02"))
    assert done.returncode == 0, done.tty
    assert done.stdout == b"x" * 30
    assert re.search(r"\d+/30 bytes", done.tty)  # bytes so far of the total
    assert re.search(r"\d+(\.\d)? (k?B|bytes)/s", done.tty)  # the rate
    assert re.search(r"\d:\d\d:\d\d", done.tty)  # the time left
    assert "200 OK · 30 bytes" in done.tty


def test_a_body_to_the_same_terminal_gets_no_bar_and_its_own_line(server):
    done = run_on_tty("get", server.url_for("/ok"), stdout_on_tty=True)
    assert done.returncode == 0
    assert "/2 bytes" not in done.tty
    assert re.search(r"ok\r?\n(\x1b\[[0-9;]*m)*200 OK", done.tty), repr(done.tty[-300:])


# -- interruptions and odd bodies ---------------------------------------------------------


def test_ctrl_c_while_waiting_cancels_and_exits_130(server):
    process = subprocess.Popen(
        [sys.executable, "-m", "connmgr", "get", server.url_for("/stall-headers?seconds=20"),
         "-v", "--retries", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "TERM": "dumb", "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # -v says what it is about to do, then waits
        assert first.startswith("GET "), first
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "error: cancelled" in err and "Traceback" not in err


def test_the_bar_trusts_content_length_only_for_an_unencoded_body():
    def response(**headers: str) -> requests.Response:
        made = requests.Response()
        made.headers.update(headers)
        return made

    assert expected_length(response(**{"Content-Length": "1234"})) == 1234
    assert expected_length(response()) is None  # chunked, or until the connection closes
    for garbage in ("", "-5", "12abc", "1e3", " "):
        assert expected_length(response(**{"Content-Length": garbage})) is None
    # gzip: the bar would count decoded bytes against the encoded length
    gz = response(**{"Content-Length": "100", "Content-Encoding": "gzip"})
    assert expected_length(gz) is None
    same = response(**{"Content-Length": "100", "Content-Encoding": "identity"})
    assert expected_length(same) == 100


def test_a_large_body_arrives_whole_in_chunks(server, tmp_path):
    target = tmp_path / "big.bin"
    done = run("get", server.url_for("/ok?size=1000000"), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.stat().st_size == 1_000_000
    assert "1.0 MB (1,000,000 bytes)" in done.stderr


def test_a_reset_mid_request_is_a_connection_error_not_no_network(server, listening_port):
    done = run(
        "get", server.url_for("/reset"), "--retries", "0",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert "no network" not in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_quiet_on_a_terminal_shows_no_spinner_and_no_bar(server):
    done = run_on_tty("get", server.url_for("/drip?bytes=10&interval=0.02"), "-q")
    assert done.returncode == 0
    assert done.stdout == b"x" * 10
    assert "bytes" not in done.tty and "waiting" not in done.tty


def test_on_a_terminal_a_429_counts_down_once_as_the_retry(server, listening_port):
    done = run_on_tty(
        "get", server.url_for("/status/429?retry_after=0.6"), "--retries", "1",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert done.returncode == 10, done.tty
    shown = set(re.findall(r"⏳ ([a-z ]+?\d*/?\d*) (?:in|now)", done.tty))
    assert shown == {"retry 1/1"}, shown  # never a second countdown for the same pause
