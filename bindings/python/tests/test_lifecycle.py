"""close(), use after close, garbage collection, the import-time library lookup."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

import tokenward

SRC = Path(__file__).resolve().parents[1] / "src"


def test_close_twice_and_context_manager(config):
    client = tokenward.Client(**config)
    assert client.token()
    client.close()
    client.close()
    assert client.closed
    with tokenward.Client(**config) as managed:
        assert managed.token()
        assert not managed.closed
    assert managed.closed


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.token(),
        lambda c: c.authorization(),
        lambda c: c.headers(),
        lambda c: c.invalidate(),
        lambda c: c.invalidate("some-token"),
        lambda c: c.set_client_secret("new"),
        lambda c: c.stats(),
    ],
    ids=["token", "authorization", "headers", "invalidate", "invalidate_token", "set_client_secret", "stats"],
)
def test_use_after_close_raises_closed_error(config, call):
    client = tokenward.Client(**config)
    client.token()  # a memo exists: close() must drop it too
    client.close()
    with pytest.raises(tokenward.ClosedError) as info:
        call(client)
    assert isinstance(info.value, tokenward.Error)
    assert "closed" in str(info.value)


def test_unclosed_clients_are_collected(mock, config):
    events = []
    client = tokenward.Client(**config, on_event=lambda kind, message: events.append(kind))
    assert client.token()
    ref = weakref.ref(client)
    del client
    gc.collect()
    assert ref() is None
    assert events == ["token_acquired"]


def test_many_unclosed_clients(mock, config):
    refs = []
    for i in range(50):
        client = tokenward.Client(**config, on_event=lambda kind, message: None)
        if i % 10 == 0:
            client.token()
        refs.append(weakref.ref(client))
    del client
    gc.collect()
    assert all(r() is None for r in refs)


def test_client_in_a_reference_cycle_is_collected(mock, config):
    class Holder:
        pass

    holder = Holder()
    holder.client = tokenward.Client(**config, on_event=lambda kind, message: holder)
    holder.client.token()
    ref = weakref.ref(holder.client)
    del holder
    gc.collect()
    assert ref() is None


def test_failed_construction_leaves_nothing_behind(config):
    with pytest.raises(tokenward.ConfigError) as info:
        tokenward.Client(**dict(config, bogus=True))
    del info
    gc.collect()  # __del__ of the half-built object must not fail


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)


def test_missing_library_named_by_env_is_an_import_error():
    result = run_python(
        "import tokenward",
        TOKENWARD_LIBRARY="/nonexistent/libtokenward.so",
        PYTHONPATH=str(SRC),
    )
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "/nonexistent/libtokenward.so" in result.stderr
    assert "cargo build --release --lib" in result.stderr


def test_missing_bundled_library_is_an_import_error(tmp_path):
    shutil.copytree(SRC / "tokenward", tmp_path / "tokenward", ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll"))
    env = {k: v for k, v in os.environ.items() if k != "TOKENWARD_LIBRARY"}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", "import tokenward"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "TOKENWARD_LIBRARY" in result.stderr and "pip install" in result.stderr


def test_bundled_library_is_used_without_env(tmp_path):
    shutil.copytree(SRC / "tokenward", tmp_path / "tokenward")
    shutil.copy(tokenward.library_path, tmp_path / "tokenward" / Path(tokenward.library_path).name)
    env = {k: v for k, v in os.environ.items() if k != "TOKENWARD_LIBRARY"}
    env["PYTHONPATH"] = str(tmp_path)
    code = "import tokenward; print(tokenward.library_path); print(tokenward.native_version())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(tmp_path))


def test_client_left_open_at_exit_with_a_background_refresh(mock, config):
    # Events must not reach a finalizing interpreter: exit while a refresh thread runs.
    mock.configure(ttl_secs=2, token_delay_ms=300)
    code = (
        "import json, sys, time, tokenward\n"
        "c = tokenward.Client(**json.loads(sys.argv[1]), on_event=lambda k, m: print(k))\n"
        "c.token()\n"
        "time.sleep(1.1)\n"
        "c.token()\n"  # starts a background refresh that is still running at exit
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    import json

    settings = dict(config, refresh_before_secs=1)
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(settings)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "token_acquired" in result.stdout
