"""`darkroom replay` given hostile or careless arguments: a one-line error and its exit code.

Each case here once ended in a traceback, a wrong exit code or a huge message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from streams.config import Settings
from tests.cli.runner import darkroom
from tests.replay.test_replay_cli import produce_uploads


def error_line(result: Result) -> str:
    """The one `error:` line a failed command printed; no traceback anywhere."""
    assert "Traceback" not in result.output + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    return errors[0]


@pytest.mark.broker
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        # 1: validated against the partition count before anything is expanded
        (
            ["--partitions", "0-3000000", "--dry-run"],
            2,
            "partitions 4-3000000 do not exist: the topic has 4 (0-3)",
        ),
        (["--partitions", "7", "--dry-run"], 2, "partition 7 does not exist"),
        # 2: times that no datetime can hold
        (["--from-time", "-999999999d", "--dry-run"], 2, "--from-time '-999999999d' is out of"),
        (["--to-time", "-99999999999999999999w", "--dry-run"], 2, "--to-time"),
        (["--from-time", "1969-12-31T23:00:00Z", "--dry-run"], 2, "1970-01-01T00:00:00Z"),
        # 4: a start after the end, found before the broker is asked
        (["--from-time", "-1h", "--to-time", "-2h", "--dry-run"], 2, "is before the start"),
        (
            ["--from-offset", "10", "--to-offset", "5", "--dry-run"],
            2,
            "the end (--to-offset 5) is before the start (--from-offset 10)",
        ),
        # 5: other combinations
        (["--out", ""], 2, "--out needs a file name"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(
    kafka: Settings, kafka_env: dict[str, str], args: list[str], code: int, message: str
) -> None:
    result = darkroom("replay", "--topic", kafka.topics.uploaded, *args, env=kafka_env)
    assert result.exit_code == code, result.output
    line = error_line(result)
    assert message in line
    assert len(line) < 250, line


@pytest.mark.broker
def test_an_empty_range_is_a_no_op(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 4)
    out = tmp_path / "empty.jsonl"
    result = darkroom(
        "replay",
        "--topic",
        kafka.topics.uploaded,
        "--from-offset",
        "0",
        "--to-offset",
        "0",
        "--out",
        str(out),
        env=kafka_env,
    )
    assert result.exit_code == 0, result.output
    assert out.read_text() == ""


@pytest.mark.broker
def test_an_export_that_cannot_be_written_fails_and_keeps_the_checkpoint(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 6)
    checkpoint = tmp_path / "cp.json"
    result = darkroom(
        "replay",
        "--topic",
        kafka.topics.uploaded,
        "--out",
        "/dev/full",
        "--checkpoint",
        str(checkpoint),
        env=kafka_env,
    )
    assert result.exit_code == 1, result.output
    assert error_line(result) == "error: cannot write /dev/full: No space left on device"
    assert json.loads(checkpoint.read_text())["next_offsets"] == {}  # nothing was written

    (tmp_path / "a-file").write_text("")
    result = darkroom(
        "replay",
        "--topic",
        kafka.topics.uploaded,
        "--out",
        str(tmp_path / "a-file" / "out.jsonl"),
        env=kafka_env,
    )
    assert result.exit_code == 1, result.output
    assert "cannot write" in error_line(result)

    result = darkroom(
        "replay", "--topic", kafka.topics.uploaded, "--out", str(tmp_path), env=kafka_env
    )
    assert result.exit_code == 2, result.output
    assert "is a directory" in error_line(result)


@pytest.mark.broker
def test_bad_checkpoints_are_usage_errors(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    produce_uploads(kafka, 4)
    base = ["replay", "--topic", kafka.topics.uploaded, "--out", str(tmp_path / "out.jsonl")]

    def run(*args: str) -> str:
        result = darkroom(*base, *args, env=kafka_env)
        assert result.exit_code == 2, result.output
        return error_line(result)

    assert "is a directory" in run("--checkpoint", str(tmp_path))
    assert "is a directory" in run("--checkpoint", str(tmp_path), "--resume")
    (tmp_path / "a-file").write_text("")
    assert "--checkpoint" in run("--checkpoint", str(tmp_path / "a-file" / "cp.json"))
    garbage = tmp_path / "garbage.json"
    for text in ("[1, 2]", '{"request": 1}', "\xff\xfe not json"):
        garbage.write_text(text, encoding="latin-1")
        assert "is not a checkpoint" in run("--checkpoint", str(garbage), "--resume")
    assert "no checkpoint at" in run("--checkpoint", str(tmp_path / "none.json"), "--resume")


@pytest.mark.broker
def test_resume_keeps_the_partitions_of_the_first_run(
    kafka: Settings, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    """A topic that grew since the first run: the checkpoint names fewer partitions."""
    produce_uploads(kafka, 8)
    checkpoint, out = tmp_path / "cp.json", tmp_path / "out.jsonl"
    args = ["replay", "--topic", kafka.topics.uploaded, "--out", str(out)]
    args += ["--checkpoint", str(checkpoint)]
    assert darkroom(*args, env=kafka_env).exit_code == 0
    saved = json.loads(checkpoint.read_text())
    dropped = max(saved["ranges"], key=int)
    del saved["ranges"][dropped]
    saved["next_offsets"] = {}
    checkpoint.write_text(json.dumps(saved))
    out.write_text("")
    result = darkroom(*args, "--resume", env=kafka_env)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and {r["partition"] for r in rows} <= {int(p) for p in saved["ranges"]}
