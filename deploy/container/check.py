"""Run the worker image against a broker on this host and see photos come out enriched.

    .venv/bin/python deploy/container/check.py [IMAGE]

Starts a private embedded broker (tansu) on a free 127.0.0.1 port with the project's topics,
runs `darkroom worker` in the image (podman, --network host: the container reaches the host's
127.0.0.1; runc and explicit ulimits, as these machines need), waits for the image's own
HEALTHCHECK command to pass, publishes four sample photos inline from the host and waits for
their PhotoEnriched events. Prints each step's time; exit 1 if any step fails.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.broker import free_port
from streams.broker.embedded import EmbeddedBroker
from streams.broker.factory import private_broker_settings
from streams.config import load_settings, settings_env
from streams.contracts.codec import codec_from_settings
from streams.contracts.schemas import SchemaRepository
from streams.kafka.topics import ensure_topics, project_topics
from streams.samples import encode_jpeg, load_photo
from streams.tail import scan

PHOTOS = ("chelsea", "coffee", "astronaut", "sign")
RUN = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def step(what: str, started: float) -> None:
    print(f"{what}: {time.monotonic() - started:.1f} s", flush=True)


def until(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(1)
    raise SystemExit(f"check: timed out after {timeout_s:g} s waiting for {what}")


def main(image: str) -> None:
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="darkroom-image-check-"))
    base = load_settings()
    settings = private_broker_settings(base, folder / "broker", engine="embedded")
    blobs = settings.blobs.model_copy(update={"inline_max_bytes": 512 * 1024})
    worker = settings.worker.model_copy(update={"web_port": free_port(), "app_id": "image-check"})
    settings = settings.model_copy(update={"blobs": blobs, "worker": worker})
    broker = EmbeddedBroker(settings)
    broker.start()
    container = f"darkroom-check-{worker.web_port}"
    try:
        ensure_topics(settings, project_topics(settings))
        step("broker up, topics made", started)
        env = [f"--env={k}={v}" for k, v in settings_env(settings).items() if "PATHS" not in k]
        subprocess.run(
            [
                "podman",
                "run",
                "--detach",
                "--rm",
                "--name",
                container,
                "--network",
                "host",
                *RUN,
                *env,
                image,
            ],
            check=True,
            capture_output=True,
        )
        health = ["podman", "healthcheck", "run", container]
        until(
            lambda: subprocess.run(health, capture_output=True).returncode == 0,
            240,
            "the container's HEALTHCHECK (/healthz 200)",
        )
        step("worker in the container healthy", started)

        photos = folder / "photos" / "ann"
        photos.mkdir(parents=True)
        for name in PHOTOS:
            (photos / f"{name}.jpg").write_bytes(encode_jpeg(load_photo(name)))
        env_here = {**settings_env(settings)}
        subprocess.run(
            [
                str(Path(sys.executable).parent / "darkroom"),
                "publish",
                "--inline",
                str(photos.parent),
            ],
            check=True,
            capture_output=True,
            env={**__import__("os").environ, **env_here},
        )
        codec = codec_from_settings(settings, SchemaRepository(settings.paths.schemas))

        def enriched() -> bool:
            events = [m for m in scan(settings, codec, settings.topics.enriched) if m.event]
            return len(events) >= len(PHOTOS)

        try:
            until(enriched, 180, f"{len(PHOTOS)} PhotoEnriched events")
        except SystemExit:
            for message in scan(settings, codec, settings.topics.failed):
                if message.event is not None:
                    record = message.event.record
                    print("dead letter:", record["reason"], record["detail"][:200])
            uploads = list(scan(settings, codec, settings.topics.uploaded))
            print(f"{len(uploads)} uploads on {settings.topics.uploaded}")
            raise
        step(f"{len(PHOTOS)} photos published from the host came out enriched", started)
    finally:
        subprocess.run(["podman", "stop", "--time", "20", container], capture_output=True)
        broker.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "localhost/darkroom-worker:0.1.0")
