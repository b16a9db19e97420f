"""``connmgr check``: each probe's result, the verdict in words, one exit code per status."""

from __future__ import annotations

import re

import pytest
from cli_helpers import run

from connmgr.cli import CHECK_EXIT_CODES, EXIT_USAGE
from connmgr.commands.exits import check_exit_code


def test_a_listening_port_is_online(listening_port):
    done = run("check", "--probe", f"127.0.0.1:{listening_port}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"tcp 127.0.0.1:{listening_port}" in done.stdout
    assert re.search(r"online\s+\d+\.\d ms", done.stdout)
    assert "Online" in done.stdout


def test_a_closed_port_is_offline(closed_port):
    done = run("check", "--probe", f"127.0.0.1:{closed_port}")
    assert done.returncode == 1
    assert "connection refused" in done.stdout and "Offline" in done.stdout


def test_one_good_probe_is_enough(listening_port, closed_port):
    done = run(
        "check", "--probe", f"127.0.0.1:{closed_port}", "--probe", f"127.0.0.1:{listening_port}"
    )
    assert done.returncode == 0
    assert done.stdout.count("ms") == 2  # both probes reported, with their times


def test_a_captive_portal_exits_2(server):
    done = run("check", "--probe", server.url_for("/generate_204"))
    assert done.returncode == 0, done.stdout
    done = run("check", "--probe", server.url_for("/portal"))
    assert done.returncode == 2
    assert "Captive portal" in done.stdout and "sign in" in done.stdout


def test_bad_probes_are_usage_errors():
    done = run("check", "--probe", "localhost")
    assert done.returncode == EXIT_USAGE and "HOST:PORT" in done.stderr


def test_every_status_has_its_own_code_and_unknown_names_do_not_break_it():
    codes = {name: code for name, code, _meaning in CHECK_EXIT_CODES}
    assert codes == {"ONLINE": 0, "OFFLINE": 1, "CAPTIVE_PORTAL": 2, "LIMITED": 3, "UNKNOWN": 4}
    for name, code in codes.items():
        assert check_exit_code(name) == code
    # A status a newer monitor might add exits like UNKNOWN, not with a traceback.
    assert check_exit_code("SOMETHING_NEW") == 4
    assert EXIT_USAGE not in codes.values()


@pytest.mark.parametrize("name", ["ONLINE", "OFFLINE", "CAPTIVE_PORTAL", "LIMITED", "UNKNOWN"])
def test_the_closing_line_has_words_for_every_status(name):
    from connmgr.commands.check import _UNKNOWN, _VERDICTS

    text, _style = _VERDICTS.get(name, _UNKNOWN)
    first_word = {"CAPTIVE_PORTAL": "Captive portal"}.get(name, name.capitalize())
    assert text.startswith(first_word + ":")


def test_help_lists_the_exit_codes():
    done = run("check", "--help")
    assert done.returncode == 0
    for _name, code, meaning in CHECK_EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}", done.stdout, re.M), meaning
