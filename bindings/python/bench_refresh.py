"""Refresh-window benchmark: ``Client.token()`` latency while refreshes are in flight.

    bash bindings/python/run_tests.sh --bench-refresh
    PYTHONPATH=bindings/python/src TOKENWARD_LIBRARY=... TOKENWARD_MOCK=... \\
        python3 bindings/python/bench_refresh.py [--seconds 24] [--threads 8]

The scenario: 8 threads call ``token()`` in a tight loop on one client; the mock issues
4-second tokens and answers each token request after 1.5 s. The core refreshes at about
half the lifetime, so a refresh is in flight for 1.5 s of every ~2.5 s, and the old token
stays usable (until 0.4 s before it expires) while it is. Every call is timed with
``time.perf_counter_ns()``; the script prints the worst call, p99 and p99.9.

For comparison it runs the same loop, as long, over a pure-Python function of the same
shape (a tuple read and a clock compare), which shows what the GIL alone costs 8 busy
threads: a thread that loses the GIL mid-call waits for the others' switch intervals.
``--pause-us N`` makes each thread sleep N µs after each call, as a thread that does I/O
between calls would, so the GIL is not always taken.

To measure another version of the package (e.g. before a change), put its ``src`` first
on ``PYTHONPATH``::

    git archive <commit> bindings/python/src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/bindings/python/src python3 bindings/python/bench_refresh.py

A benchmark, never a test: nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Callable, List, Optional, Tuple

import tokenward

TTL_SECS = 4
DELAY_MS = 1500
# Calls faster than this are only counted; slower ones are kept for the percentiles.
FAST_NS = 2_000


class Mock:
    def __init__(self) -> None:
        mock = os.environ.get("TOKENWARD_MOCK")
        if not mock or not os.path.isfile(mock):
            sys.exit("bench_refresh.py: set TOKENWARD_MOCK to the mock_idp executable (run_tests.sh does).")
        self.process = subprocess.Popen(
            [mock, "--port", "0", "--lifetime-secs", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            sys.exit(f"bench_refresh.py: the mock did not start (printed {self.url!r}).")

    def admin(self, name: str, body: Optional[dict] = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/admin/{name}", data=data, method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict = json.load(response)
            return result

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


class Result:
    """Per-thread tallies: every call counted, slow ones kept."""

    __slots__ = ("calls", "slow")

    def __init__(self) -> None:
        self.calls = 0
        self.slow: List[int] = []


def hammer(
    function: Callable[[], object], threads: int, seconds: float, pause: float
) -> Tuple[int, List[int]]:
    """Run ``function`` in a loop on ``threads`` threads for ``seconds``, sleeping ``pause``
    seconds after each call (0: a tight loop); (calls, sorted latencies of the slow calls
    in ns)."""
    results = [Result() for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(result: Result) -> None:
        clock = time.perf_counter_ns
        sleep = time.sleep
        slow = result.slow
        calls = 0
        start.wait()
        end = stop_at[0]
        while True:
            began = clock()
            function()
            took = clock() - began
            calls += 1
            if took >= FAST_NS:
                slow.append(took)
                if began >= end:
                    break
            elif calls & 1023 == 0 and began >= end:
                break
            if pause:
                sleep(pause)
        result.calls = calls

    workers = [threading.Thread(target=worker, args=(r,)) for r in results]
    for w in workers:
        w.start()
    stop_at[0] = time.perf_counter_ns() + int(seconds * 1e9)
    start.wait()
    for w in workers:
        w.join()
    calls = sum(r.calls for r in results)
    slow = sorted(t for r in results for t in r.slow)
    return calls, slow


def percentile(calls: int, slow: List[int], fraction: float) -> Optional[int]:
    """The latency at ``fraction`` of all calls; ``None`` if it is under FAST_NS."""
    rank = math.ceil(fraction * calls)  # 1-based, ascending
    fast = calls - len(slow)
    return None if rank <= fast else slow[rank - fast - 1]


def show(name: str, calls: int, slow: List[int]) -> None:
    def ms(value: Optional[int]) -> str:
        return f"< {FAST_NS / 1000:.0f} µs" if value is None else f"{value / 1e6:.3f} ms"

    worst = slow[-1] if slow else None
    print(
        f"{name:<34} worst {ms(worst):>12}  p99.9 {ms(percentile(calls, slow, 0.999)):>12}  "
        f"p99 {ms(percentile(calls, slow, 0.99)):>10}  "
        f"calls {calls:>11,}  over 1 ms {sum(1 for t in slow if t >= 1_000_000):>5}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="length of each run (default 24)")
    parser.add_argument("--threads", type=int, default=8, help="threads calling token() (default 8)")
    parser.add_argument(
        "--pause-us", type=float, default=0.0,
        help="each thread sleeps this long after each call, as if doing I/O (default 0: a tight loop)",
    )
    args = parser.parse_args()
    pause = args.pause_us / 1e6

    mock = Mock()
    try:
        mock.admin("config", {"ttl_secs": TTL_SECS, "token_delay_ms": DELAY_MS})
        client = tokenward.Client(
            token_url=mock.url + "/oauth/token",
            client_id="demo-client",
            client_secret="demo-secret",
            allow_http=True,
        )
        print(
            f"Python {sys.version.split()[0]}, tokenward {tokenward.native_version()}, package "
            f"{os.path.dirname(tokenward.__file__)}\n{args.threads} threads, {TTL_SECS} s tokens, "
            f"token endpoint answering after {DELAY_MS / 1000} s, {args.seconds:.0f} s per run, "
            f"{'a tight loop' if not pause else f'{args.pause_us:.0f} µs sleep after each call'}, "
            f"switch interval {sys.getswitchinterval() * 1000:.0f} ms\n"
        )
        client.token()
        before = mock.admin("stats")["token_requests"]
        calls, slow = hammer(client.token, args.threads, args.seconds, pause)
        fetched = mock.admin("stats")["token_requests"] - before
        show("tokenward Client.token()", calls, slow)

        memo = ("token", time.monotonic_ns() + 3_600_000_000_000)
        clock = time.monotonic_ns

        def pure_python() -> str:
            if clock() < memo[1]:
                return memo[0]
            raise AssertionError("unreachable")

        calls, slow = hammer(pure_python, args.threads, args.seconds, pause)
        show("pure-Python floor (tuple + clock)", calls, slow)
        print(f"\ntoken requests during the tokenward run: {fetched} (one refresh per ~{TTL_SECS / 2:.0f}-2.5 s expected)")
        client.close()
    finally:
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
