"""The connmgr command as a user runs it: subprocesses against FaultServer on loopback."""

from __future__ import annotations

import importlib.util
import re

import pytest
from cli_helpers import ROOT, run

from connmgr import cli, errors
from connmgr.cli import EXIT_CODES, EXIT_USAGE, exit_code_for, parse_probe, parse_timeout
from connmgr.network import HttpProbe, TcpProbe

ANSI = re.compile(r"\x1b\[")


# -- connmgr, --help, --version -----------------------------------------------------------


def test_version_and_help():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"connmgr {connmgr_version()}"
    done = run("--help")
    assert done.returncode == 0
    for command in ("get", "check", "statechart", "demo"):
        assert command in done.stdout
    done = run("demo", "--help")
    for name in ("healthy", "flaky", "outage", "rate-limit", "network"):
        assert name in done.stdout


def connmgr_version() -> str:
    import connmgr

    return connmgr.__version__


def test_bad_arguments_exit_64_not_2_which_means_captive_portal():
    done = run("get")
    assert done.returncode == EXIT_USAGE and "url" in done.stderr
    assert run("frobnicate").returncode == EXIT_USAGE


# -- get ------------------------------------------------------------------------------------


def test_get_prints_the_body_to_stdout_and_the_status_to_stderr(server):
    done = run("get", server.url_for("/ok?size=12"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "x" * 12
    assert done.stderr.startswith("200 OK · 12 bytes · ")
    assert "attempt" not in done.stderr and "retr" not in done.stderr  # none were needed
    assert not ANSI.search(done.stderr)  # piped: plain lines only


def test_get_a_404_exits_4_and_still_shows_the_body(server):
    done = run("get", server.url_for("/status/404"))
    assert done.returncode == 4
    assert "404" in done.stderr
    assert server.hits("/status/404") >= 1


def test_get_a_dns_failure_says_so_in_plain_words_without_a_traceback(listening_port):
    # The probe (a listening loopback port) says the network is up, so the
    # failure is the name, not the network.
    done = run("get", "http://nothing.invalid/", "--probe", f"127.0.0.1:{listening_port}")
    assert done.returncode == 6, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "error: Could not find the server nothing.invalid" in done.stderr
    assert errors.DNSError.default_suggestion.split()[0] in done.stderr or "Check" in done.stderr


def test_get_a_refused_connection_exits_with_the_connection_code(listening_port, closed_port):
    done = run(
        "get", f"http://127.0.0.1:{closed_port}/", "--retries", "0",
        "--probe", f"127.0.0.1:{listening_port}",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_get_a_503_with_no_retries_exits_5(server):
    done = run("get", server.url_for("/status/503"), "--retries", "0")
    assert done.returncode == 5
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_get_a_read_timeout_from_the_timeout_option_exits_8(server):
    done = run(
        "get", server.url_for("/stall-headers?seconds=3"), "--timeout", "1,0.3,2", "--retries", "0"
    )
    assert done.returncode == 8, done.stderr
    assert "Traceback" not in done.stderr


def test_get_sends_headers_and_never_prints_their_secret_values(server):
    done = run(
        "get", server.url_for("/echo"), "-v",
        "-H", "Authorization: Bearer s3cr3t-t0ken", "-H", "X-Client: demo",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"X-Client": "demo"' in done.stdout or "demo" in done.stdout
    assert "s3cr3t-t0ken" not in done.stderr
    assert "operation default" in done.stderr  # -v shows the profile


def test_get_refuses_bad_options_in_words(server):
    done = run("get", server.url_for("/ok"), "--timeout", "fast")
    assert done.returncode == EXIT_USAGE and "CONNECT,READ,TOTAL" in done.stderr
    done = run("get", server.url_for("/ok"), "--operation", "serch")
    assert done.returncode == EXIT_USAGE
    assert "search" in done.stderr and "Traceback" not in done.stderr
    done = run("get", server.url_for("/ok"), "-H", "no colon")
    assert done.returncode == EXIT_USAGE and "Name: value" in done.stderr


def test_get_reports_retries_and_state_changes_on_stderr(server, capsys):
    # In-process, with a short first retry delay so the test does not wait 0.5 s.
    server.reset()
    code = cli.main(
        ["get", server.url_for("/flaky/cli?fail=1"), "--retries", "2", "--retry-delay", "0.01"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "attempt 1 failed" in captured.err
    assert "retry 1/2 in " in captured.err
    assert "online → degraded" in captured.err
    assert captured.err.splitlines()[-1].endswith(" · 1 retry")
    assert "attempt 2" not in captured.err  # the second attempt succeeded
    assert server.hits("/flaky/cli") == 2


def test_quiet_get_prints_only_the_body(server):
    done = run("get", server.url_for("/ok"), "-q")
    assert done.returncode == 0 and done.stdout == "ok" and done.stderr == ""


def test_get_writes_the_body_to_a_file(server, tmp_path):
    target = tmp_path / "body.bin"
    done = run("get", server.url_for("/ok?size=5"), "-o", str(target))
    assert done.returncode == 0 and done.stdout == ""
    assert target.read_bytes() == b"xxxxx"


# -- pieces -----------------------------------------------------------------------------------


def test_exit_codes_per_error_class():
    assert exit_code_for(errors.DNSError("x")) == 6
    assert exit_code_for(errors.ConnectionFailedError("x")) == 7
    assert exit_code_for(errors.DeadlineExceededError("x")) == 8
    assert exit_code_for(errors.RequestTimeoutError("x")) == 8
    assert exit_code_for(errors.TLSError("x")) == 9  # a requests.ConnectionError, yet not 7
    assert exit_code_for(errors.ServerError("x")) == 5
    assert exit_code_for(errors.HTTPStatusError("x")) == 4
    assert exit_code_for(errors.RateLimitError("x")) == 10
    assert exit_code_for(errors.OfflineError("x")) == 11
    assert exit_code_for(errors.BackoffError("x")) == 12
    assert exit_code_for(errors.InvalidRequestError("x")) == 3
    assert exit_code_for(errors.RequestCancelledError("x")) == 130
    assert exit_code_for(errors.NetworkError("x")) == 1
    assert exit_code_for(RuntimeError("x")) == 1
    codes = [code for _name, code, _meaning in EXIT_CODES]
    assert len(codes) == len(set(codes)), "two classes share an exit code"


def test_every_exit_code_is_documented():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, code, _meaning in EXIT_CODES:
        assert re.search(rf"\|\s*`?{code}`?\s*\|[^\n]*{name}", text), f"{name} ({code})"


def test_parsing_timeouts_and_probes():
    assert parse_timeout("3,10,20") == (3.0, 10.0, 20.0)
    assert parse_timeout("3, 10, none") == (3.0, 10.0, None)
    assert parse_timeout("3,10") == (3.0, 10.0, None)
    for bad in ("3", "a,b,c", "1,2,3,4"):
        with pytest.raises(ValueError, match="CONNECT,READ,TOTAL"):
            parse_timeout(bad)
    assert parse_probe("127.0.0.1:8080") == TcpProbe("127.0.0.1", 8080)
    assert parse_probe("[::1]:443") == TcpProbe("::1", 443)
    assert parse_probe("http://127.0.0.1:1/x", expect_status=200) == HttpProbe(
        "http://127.0.0.1:1/x", 200
    )
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_probe("localhost")


def test_demo_gui_without_pyside6_names_the_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "PySide6" else real(name)
    )
    assert cli.main(["demo", "--gui"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'connmgr[qt]'" in err and "Traceback" not in err
