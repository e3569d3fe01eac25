"""Who may ask the worker's HTTP API: token files, the check, and the refusal to expose data."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
import structlog

from streams.config import WorkerSettings, load_settings
from streams.errors import ExitCode, UsageError
from streams.worker import access
from streams.worker.access import ApiAccess, ApiConfigError, TokenFile, is_loopback, read_tokens
from streams.worker.app import create_stream_app

TOKEN = "s3cr3t-token-for-the-tests-42"
NEW = "n3w-token-after-the-rotation-7"


def token_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_loopback_hosts_and_the_others() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.5", "worker-1.internal", "192.168.1.2"):
        assert not is_loopback(host), host


def test_a_worker_beyond_loopback_without_a_token_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ApiConfigError) as refused:
        ApiAccess.from_settings(WorkerSettings(web_host="0.0.0.0"))
    assert isinstance(refused.value, UsageError) and refused.value.exit_code == ExitCode.USAGE
    message = str(refused.value)
    assert "\n" not in message and "DARKROOM_WORKER_API_TOKEN_FILE" in message
    assert "ALLOW_ANONYMOUS" in message
    # loopback, an explicit permission, or a token file: it starts
    assert ApiAccess.from_settings(WorkerSettings()).tokens is None
    anonymous = WorkerSettings(web_host="10.0.0.5", api_allow_anonymous=True)
    assert ApiAccess.from_settings(anonymous).check(None) is None
    guarded = WorkerSettings(web_host="0.0.0.0", api_token_file=token_file(tmp_path, TOKEN))
    assert ApiAccess.from_settings(guarded).check(None) is not None


def test_the_check_takes_bearer_tokens_of_the_file_and_nothing_else(tmp_path: Path) -> None:
    path = token_file(tmp_path, "# rotated 2026-12", "", TOKEN, f"  {NEW}  ")
    check = ApiAccess(TokenFile(path), frozenset()).check
    assert check(f"Bearer {TOKEN}") is None and check(f"bearer {NEW}") is None
    for header in (None, "", TOKEN, f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN[:-1]}"):
        assert check(header) is not None, header
    assert check("Bearer # rotated 2026-12") is not None  # comments are not tokens


def test_every_token_is_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(given: bytes, token: bytes) -> bool:
        compared.append(token)
        return real(given, token)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    tokens = TokenFile(token_file(tmp_path, TOKEN, NEW))
    assert tokens.accepts(TOKEN)  # the first one matches, and the second is compared anyway
    assert compared == [TOKEN.encode(), NEW.encode()]


def test_bad_token_files_are_refused_naming_the_line_never_the_content(tmp_path: Path) -> None:
    cases = {
        "short": (["tooshort"], "line 1"),
        "spaces": ([TOKEN, "has spaces inside it, 123"], "line 2"),
        "empty": (["# only a comment", ""], "no token"),
    }
    for name, (lines, said) in cases.items():
        path = tmp_path / name
        path.write_text("\n".join(lines))
        with pytest.raises(ApiConfigError) as refused:
            read_tokens(path)
        message = str(refused.value)
        assert said in message and str(path) in message, name
        assert not any(line and line in message for line in lines if line != "# only a comment")
    with pytest.raises(ApiConfigError, match="cannot read"):
        read_tokens(tmp_path / "missing")


def test_tokens_rotate_by_editing_the_file_and_a_bad_edit_keeps_the_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "RELOAD_EVERY_S", 0.0)
    path = token_file(tmp_path, TOKEN)
    tokens = TokenFile(path)
    assert tokens.accepts(TOKEN) and not tokens.accepts(NEW)
    path.write_text(f"{TOKEN}\n{NEW}\n")  # step 1: the new token beside the old
    assert tokens.accepts(TOKEN) and tokens.accepts(NEW)
    path.write_text(f"{NEW}\n")  # step 2: the old one removed
    assert tokens.accepts(NEW) and not tokens.accepts(TOKEN)
    with structlog.testing.capture_logs() as logs:
        path.write_text(f"{NEW}\nshort-{TOKEN[:3]}\n")  # a mistake: the previous tokens hold
        assert tokens.accepts(NEW)
    assert logs and "line 2" in logs[0]["error"]
    assert TOKEN[:3] not in str(logs) and NEW not in str(logs)


def test_the_worker_app_is_not_built_with_its_data_exposed(tmp_path: Path) -> None:
    exposed = load_settings(worker={"web_host": "0.0.0.0", "data_dir": tmp_path / "data"})
    with pytest.raises(ApiConfigError):
        create_stream_app(exposed)
    assert not (tmp_path / "data").exists()  # refused before anything was made
