"""The docs quote the code, and their samples run.

Every ```python block of README.md and of each docs/*.md page runs here, the
way a reader would paste it:

- each block runs alone, in a fresh namespace (a block that needs a name defines it);
- a block whose fence is preceded (blank lines aside) by the line
  ``<!-- not runnable: <reason> -->`` is skipped with that reason, which must
  say why in at least 10 characters;
- a fence with another language (```text, ```sh, ```console, ```json …) is not
  run; a bare ``` fence fails, because a reader cannot tell what it holds;
- the example hosts of :data:`EXAMPLE_HOSTS` are replaced by the URL of a
  :class:`~connmgr.testing.FaultServer` started for the block, so requests to
  ``https://api.example.com/items/1`` reach a real loopback server;
- the example paths of :data:`EXAMPLE_ROUTES` answer as the route they stand
  for (``/search`` answers like ``/echo``: 200 with a JSON body);
- the process-wide default :class:`~connmgr.NetworkMonitor` is replaced by one
  that probes a loopback :class:`~connmgr.testing.ProbeTarget`, and every
  connect or name lookup of anything but loopback is refused and fails the
  block: no block reaches a public address or name.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connmgr.network import NetworkMonitor, TcpProbe, set_default_monitor
from connmgr.testing import FaultServer, ProbeTarget

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: The hosts the pages use as examples, each replaced (with any ``:port`` after
#: it) by the block's FaultServer URL. Matched as written: another spelling of
#: a host (``https://API.example.com:443``, in a block about normalising
#: origins) is left alone, so such a block still shows what it shows.
EXAMPLE_HOSTS = (
    "https://api.example.com",
    "http://api.example.com",
    "https://store.example.com",
    "http://store.example.com",
    "https://status.example.com",
    "http://status.example.com",
    "http://127.0.0.1:8080",
)

#: The example paths the pages send to, and the FaultServer route each answers as.
EXAMPLE_ROUTES = {"/search": "/echo"}

#: Pages that must keep at least this many runnable blocks (they teach by example).
MIN_RUNNABLE = {
    "errors.md": 4,
    "migrating.md": 1,
    "network.md": 8,
    "offline.md": 4,
    "rate-limiting.md": 4,
}

_NOT_RUNNABLE = re.compile(r"<!-- not runnable: (?P<reason>.*?) -->")
_FENCE = re.compile(r"^```(?P<lang>.*)$")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_runnable: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order (fences at column 0, as the pages write them)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        before = next((text for text in reversed(lines[:index]) if text.strip()), "")
        mark = _NOT_RUNNABLE.fullmatch(before.strip())
        found.append(
            Block(
                page=page,
                line=index + 1,
                lang=opening.group("lang").strip(),
                code="\n".join(lines[index + 1 : end]) + "\n",
                not_runnable=mark.group("reason").strip() if mark else None,
            )
        )
        index = end + 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.lang == "python"]


def substitute_hosts(code: str, url: str) -> str:
    """``code`` with each of :data:`EXAMPLE_HOSTS` (and a ``:port`` after it) made ``url``."""
    for host in EXAMPLE_HOSTS:
        code = re.sub(re.escape(host) + r"(?::\d+)?(?![\w.-])", url, code)
    return code


def _is_loopback(host: Any) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse every name lookup and connect beyond loopback; yield what was tried."""
    tried: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            tried.append(f"name lookup of {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "refused by the docs runner")
        return real_getaddrinfo(host, *args, **kwargs)

    def refuse(sock: socket.socket, address: Any) -> bool:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            tried.append(f"connect to {address!r}")
            return True
        return False

    def connect(sock: socket.socket, address: Any) -> None:
        if refuse(sock, address):
            raise ConnectionRefusedError("refused by the docs runner: not loopback")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if refuse(sock, address):
            raise ConnectionRefusedError("refused by the docs runner: not loopback")
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield tried


def run_block(block: Block, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run one block as the module docstring says; return what it printed."""
    printed = io.StringIO()
    with FaultServer() as server, ProbeTarget() as internet, loopback_only(monkeypatch) as tried:
        for path, route in EXAMPLE_ROUTES.items():
            server.alias(path, route)
        monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", internet.port)])
        previous = set_default_monitor(monitor)
        try:
            # Blank lines first: a traceback's line numbers are the page's own.
            code = "\n" * block.line + substitute_hosts(block.code, server.url)
            page = str(block.page.relative_to(ROOT))
            with contextlib.redirect_stdout(printed):
                exec(compile(code, page, "exec"), {"__name__": "docs_block"})
        finally:
            set_default_monitor(previous)
            monitor.close()
    assert not tried, f"{block.where} tried to leave loopback: {tried}"
    return printed.getvalue()


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_every_python_block_runs(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.not_runnable is not None:
        pytest.skip(f"marked not runnable: {block.not_runnable}")
    run_block(block, monkeypatch)


def test_every_fence_says_what_it_holds() -> None:
    bare = [f"{b.where}: {b.code.strip().splitlines()[0][:60]!r}" for b in ALL_BLOCKS if not b.lang]
    assert not bare, "bare ``` fences (write ```python, ```text or ```sh): " + "; ".join(bare)


def test_every_not_runnable_mark_says_why_and_sits_on_a_python_block() -> None:
    problems = []
    marked = {(b.page, b.line) for b in ALL_BLOCKS if b.not_runnable is not None}
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines, 1):
            mark = _NOT_RUNNABLE.search(text)
            if mark is None:
                continue
            reason = mark.group("reason").strip()
            if len(reason) < 10:
                problems.append(f"{page.name}:{number}: say why in 10 characters or more")
            following = next(
                (n for n, t in enumerate(lines[number:], number + 1) if t.strip()), None
            )
            if (page, following) not in marked:
                problems.append(f"{page.name}:{number}: the mark is not right above a fence")
    for block in ALL_BLOCKS:
        if block.not_runnable is not None and block.lang != "python":
            problems.append(f"{block.where}: only python blocks run; drop the mark")
    assert not problems, problems


@pytest.mark.parametrize(("name", "least"), sorted(MIN_RUNNABLE.items()))
def test_pages_that_teach_by_example_keep_their_runnable_blocks(name: str, least: int) -> None:
    runnable = [b for b in PYTHON_BLOCKS if b.page.name == name and b.not_runnable is None]
    assert len(runnable) >= least, f"{name}: {len(runnable)} runnable blocks, fewer than {least}"


def test_the_runner_substitutes_every_example_host_and_only_those() -> None:
    code = (
        'a = "https://api.example.com/items/1"\n'
        'b = "https://store.example.com:443/search"\n'
        'c = "http://api.example.com"\n'
        'd = "https://api.example.com.evil/"\n'
        'e = "https://API.example.com:443"\n'
    )
    out = substitute_hosts(code, "http://127.0.0.1:1")
    assert out.splitlines() == [
        'a = "http://127.0.0.1:1/items/1"',
        'b = "http://127.0.0.1:1/search"',
        'c = "http://127.0.0.1:1"',
        'd = "https://api.example.com.evil/"',
        'e = "https://API.example.com:443"',
    ]


def test_a_block_that_reaches_past_loopback_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = "import socket\nwith socket.socket() as s:\n    s.connect(('192.0.2.1', 80))\n"
    looks_up = "import socket\nsocket.getaddrinfo('example.org', 80)\n"
    for code, said in ((connects, "connect to"), (looks_up, "name lookup of 'example.org'")):
        block = Block(ROOT / "README.md", 1, "python", f"try:\n{_indent(code)}except OSError:\n"
                      "    pass\n", None)  # fmt: skip
        with pytest.raises(AssertionError, match=f"tried to leave loopback: .*{said}"):
            run_block(block, monkeypatch)


def _indent(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.splitlines())


def test_the_printed_check_url_lines_are_what_the_errors_page_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = [b for b in PYTHON_BLOCKS if b.page.name == "errors.md"]
    block = next(b for b in page if "check_url(bad)" in b.code)
    shown = [line[2:] for line in block.code.splitlines() if line.startswith("# ")]
    lines = run_block(block, monkeypatch).splitlines()
    assert len(lines) == len(shown) == 3
    for real, quoted in zip(lines, shown, strict=True):
        head, _, tail = quoted.partition("...")
        assert real.startswith(head) and real.endswith(tail), (real, quoted)


def test_states_page_shows_the_pre_rendered_statechart():
    page = (ROOT / "docs" / "states.md").read_text(encoding="utf-8")
    assert "](images/connection.svg)" in page
    assert "```mermaid" not in page  # no diagram that needs a script from a CDN
    shown = (ROOT / "docs" / "images" / "connection.svg").read_bytes()
    generated = (ROOT / "statecharts" / "connection.svg").read_bytes()
    assert shown == generated, "cp statecharts/connection.svg docs/images/connection.svg"


def test_the_docs_site_loads_nothing_from_a_cdn():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    settings = [line for line in config.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in settings if "mermaid" in line.lower()]
    assert "extra_javascript" not in config
    assert "font: false" in settings_text(settings)  # not Roboto from Google's CDN
    for page in (ROOT / "docs").glob("*.md"):
        assert "```mermaid" not in page.read_text(encoding="utf-8"), page.name


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:1500]
    assert "make demo" in head and "make test" in head


def test_readme_says_how_to_install_from_a_checkout():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[qt]'" in readme
    assert "pip install connmgr" not in readme  # not on an index yet


def settings_text(lines: list[str]) -> str:
    return "\n".join(line.strip() for line in lines)
