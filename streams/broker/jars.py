"""What Apache Kafka needs on this machine: Java 17+, and its jars from Maven Central.

The jars are fetched once per version by Maven (``pom.xml`` beside this file) into
``broker.cache_dir/<version>/``. A fetch writes into a temporary folder that is renamed into
place only after a marker file records success, so an interrupted fetch never leaves a cache
that looks complete; every later start finds the marker and runs no Maven at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Final

from streams.errors import SetupError

MARKER: Final = ".darkroom-complete"
MIN_JAVA: Final = 17  # Kafka 4.x brokers run on Java 17 or newer only
FETCH_TIMEOUT_S: Final = 900.0
JAVA_HINT: Final = (
    "install it with `sudo apt-get install openjdk-17-jre-headless` (or point JAVA_HOME at a "
    "JDK 17+), or use the embedded broker (`--engine embedded`)"
)
MAVEN_HINT: Final = "install it with `sudo apt-get install maven`"


class KafkaSetupError(SetupError):
    """Java or Maven is missing or too old, or the Kafka jars could not be fetched."""


def java_binary() -> Path:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` on PATH, at least Java 17."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is None or not candidate.is_file():
        found = shutil.which("java")
        if found is None:
            raise KafkaSetupError(
                f"Apache Kafka needs Java {MIN_JAVA} or newer, and no `java` is on PATH"
                f"{f' or in JAVA_HOME ({home})' if home else ''}: {JAVA_HINT}"
            )
        candidate = Path(found)
    version = java_version(candidate)
    if version < MIN_JAVA:
        raise KafkaSetupError(
            f"Apache Kafka needs Java {MIN_JAVA} or newer; {candidate} is Java {version}: "
            f"{JAVA_HINT}"
        )
    return candidate


def java_version(java: Path) -> int:
    """The major version `java -version` reports (8 for "1.8.0_392", 17 for "17.0.15")."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaSetupError(f"`{java} -version` failed: {exc}: {JAVA_HINT}") from exc
    text = result.stderr + result.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if result.returncode != 0 or match is None:
        raise KafkaSetupError(
            f"`{java} -version` did not say which Java it is ({text.strip()[:200]!r}): {JAVA_HINT}"
        )
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major


def jar_dir(cache_dir: Path, version: str) -> Path:
    """Where the jars of ``version`` are (or will be) kept."""
    return cache_dir / version


def cached(cache_dir: Path, version: str) -> bool:
    """True when ``version`` was fetched completely before."""
    return (jar_dir(cache_dir, version) / MARKER).is_file()


def resolve_jars(
    version: str, cache_dir: Path, progress: Callable[[str], None] = lambda _m: None
) -> Path:
    """The folder holding every jar Kafka ``version`` runs on, fetched first if need be."""
    dest = jar_dir(cache_dir, version)
    if cached(cache_dir, version):
        return dest
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            f"the Apache Kafka {version} jars are not in {cache_dir} yet, and fetching them "
            f"from Maven Central needs Maven, but no `mvn` is on PATH: {MAVEN_HINT}"
        )
    progress(f"fetching Apache Kafka {version} jars from Maven Central (first run only, ~45 MB)...")
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".fetch-{version}-") as tmp:
        work = Path(tmp)
        pom = work / "pom.xml"
        pom.write_bytes(resources.files("streams.broker").joinpath("pom.xml").read_bytes())
        jars = work / "jars"
        command = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",  # plain error text for the message below
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={jars}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={version}",
        ]
        try:
            result = subprocess.run(
                command,
                cwd=work,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise KafkaSetupError(
                f"Maven did not fetch Apache Kafka {version} within {FETCH_TIMEOUT_S:g} s "
                "(is Maven Central reachable?)"
            ) from None
        output = (result.stdout + result.stderr).strip()
        main_jar = jars / f"kafka_2.13-{version}.jar"
        if result.returncode != 0 or not main_jar.is_file():
            last = "\n".join(output.splitlines()[-15:]) or "(no output)"
            raise KafkaSetupError(
                f"Maven could not fetch Apache Kafka {version} (exit {result.returncode}; is "
                f"the version right and Maven Central reachable?):\n{last}"
            )
        names = sorted(p.name for p in jars.glob("*.jar"))
        record = {"version": version, "jars": names, "seconds": time.monotonic() - started}
        (jars / MARKER).write_text(json.dumps(record, indent=1), encoding="utf-8")
        if cached(cache_dir, version):  # another start fetched it meanwhile: keep that one
            return dest
        if dest.exists():  # a folder without the marker: left by hand or by an old version
            shutil.rmtree(dest)
        jars.rename(dest)
    return dest
