"""shared_cache from Python: two interpreters share one token (file and Redis backends), and
forked workers get refresh points of their own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import tokenward
from conftest import Mock

HERE = Path(__file__).resolve().parent

# One interpreter: build a client from the JSON config in argv[1], say so, wait for a line on
# stdin (so both ask at once), print the token and the client's stats.
INTERPRETER = """
import json, sys
import tokenward
client = tokenward.Client(**json.loads(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
token = client.token()
print(json.dumps({"token": token, "stats": client.stats()}), flush=True)
client.close()
"""


def interpreters(config: Dict[str, Any], count: int = 2) -> List[Dict[str, Any]]:
    """Run `count` interpreters on `config` together; their outputs."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", INTERPRETER, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = []
        for process in processes:
            out, _ = process.communicate(timeout=60)
            assert process.returncode == 0, out
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def store_dir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="tokenward-py-shared-"))
    yield parent / "store"
    shutil.rmtree(parent, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The suite's Redis (TOKENWARD_TEST_REDIS, database 14, emptied), or a private one."""
    url = os.environ.get("TOKENWARD_TEST_REDIS")
    if url:
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.split('/')[0]}/14"
        subprocess.run(["redis-cli", "-u", url, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL)
        yield url
        return
    if shutil.which("redis-server") is None:
        pytest.fail("no Redis: set TOKENWARD_TEST_REDIS or install redis-server")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(5) == b"+PONG":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


def check_one_token_for_both(mock: Mock, config: Dict[str, Any]) -> None:
    outputs = interpreters(config)
    assert outputs[0]["token"] == outputs[1]["token"]
    assert mock.stats()["token_requests"] == 1
    hits = sorted(o["stats"]["shared_hits"] for o in outputs)
    misses = sorted(o["stats"]["shared_misses"] for o in outputs)
    assert (hits, misses) == ([0, 1], [0, 1])
    assert all(o["stats"]["shared_errors"] == 0 for o in outputs)


def test_two_interpreters_share_one_token_through_a_directory(mock: Mock, config: Dict[str, Any], store_dir: Path) -> None:
    check_one_token_for_both(mock, dict(config, shared_cache=f"file://{store_dir}"))
    assert store_dir.stat().st_mode & 0o777 == 0o700


def test_two_interpreters_share_one_token_through_redis(mock: Mock, config: Dict[str, Any], redis_url: str) -> None:
    check_one_token_for_both(mock, dict(config, shared_cache=redis_url))


def test_a_failing_store_is_an_event_not_an_error(mock: Mock, config: Dict[str, Any], make_client: Any) -> None:
    events: List[Any] = []
    port = free_port()  # nothing listens there
    client = make_client(
        on_event=lambda kind, message: events.append((kind, message)),
        **dict(config, shared_cache=f"redis://:pw-secret@127.0.0.1:{port}/0"),
    )
    assert client.token()
    kinds = [kind for kind, _ in events]
    assert kinds.count("shared_store_unavailable") == 1, events
    assert all("pw-secret" not in message for _, message in events)
    assert client.stats()["shared_errors"] == 1


def test_without_shared_cache_the_stats_are_unchanged(client: tokenward.Client) -> None:
    client.token()
    assert not any(key.startswith("shared_") for key in client.stats())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_get_refresh_points_of_their_own(config: Dict[str, Any], make_client: Any, tmp_path: Path) -> None:
    # One-hour tokens refreshed 300 s early, less up to 30 s of jitter.
    client = make_client(**dict(config, refresh_before_secs=300))
    token = client.token()
    assert client._memo is not None
    parent_point = client._memo[1]  # the refresh point, on the machine-wide monotonic clock
    points = [parent_point]
    for i in range(4):
        out = tmp_path / f"child-{i}"
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if client.token() == token and client._memo is not None:
                    out.write_text(str(client._memo[1]))
                    code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 15
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("a forked child hung")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
        points.append(int(out.read_text()))
    for i, a in enumerate(points):
        assert abs(a - parent_point) <= 30_000_000_000
        for b in points[i + 1 :]:
            # Two draws from 30 s fall within 0.5 ms of each other about once in 10^4 runs.
            assert abs(a - b) > 500_000, points
