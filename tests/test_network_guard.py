"""The suite really runs offline: connections fail, and the tokenizer still works."""

from __future__ import annotations

import socket

import pytest
import tiktoken
import tiktoken.registry

from context_manager.tokens import get_encoding


def test_outbound_connection_fails() -> None:
    with pytest.raises(RuntimeError, match="network access blocked"):
        socket.create_connection(("93.184.216.34", 443), timeout=1)


def test_name_resolution_fails() -> None:
    with pytest.raises(RuntimeError, match="network access blocked"):
        socket.getaddrinfo("openaipublic.blob.core.windows.net", 443)


def test_loopback_is_blocked_without_the_marker() -> None:
    with pytest.raises(RuntimeError, match="network access blocked"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_tiktoken_download_path_fails_here_but_ours_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tiktoken's own loader would download o200k_base; with an empty cache and no network it fails.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    with pytest.raises(Exception) as info:  # noqa: PT011 - requests wraps it in its own type
        tiktoken.get_encoding("o200k_base")
    chain, exc = [], info.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any("network access blocked" in text for text in chain), chain
    assert get_encoding("o200k_base").encode("hello world") == [24912, 2375]
