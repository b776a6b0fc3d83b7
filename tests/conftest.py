"""Shared fixtures: the network is blocked for every test, the environment is clean."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis: `HYPOTHESIS_MAX_EXAMPLES=1000 pytest` for a deeper run.
settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")


class NetworkBlocked(RuntimeError):
    """A test tried to open a network connection."""


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _host_of(address: Any) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None  # AF_UNIX paths and the like


@pytest.fixture(autouse=True)
def block_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every socket connection fail; `network_allowed` tests may reach loopback only."""
    allow_loopback = request.node.get_closest_marker("network_allowed") is not None
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        host = _host_of(address)
        if host is None or (allow_loopback and host in _LOOPBACK):
            return
        raise NetworkBlocked(f"network access blocked in tests: connect to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if allow_loopback and str(host) in _LOOPBACK:
            return real_getaddrinfo(host, *args, **kwargs)
        raise NetworkBlocked(f"network access blocked in tests: resolve {host!r}")

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No API key leaks in, and tiktoken finds no cached download to fall back on.

    No terminal size either: pytest-xdist's workers set ``COLUMNS=80``, which the CLI takes
    for a terminal's width (its tables would be cut to it, as on an 80-column terminal).
    """
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("tiktoken-cache")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(empty))
