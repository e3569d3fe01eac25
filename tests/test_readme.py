"""The docs' configuration table matches the settings the code reads; CI runs the README's
test command."""

from __future__ import annotations

import re

from streams.config import REPO_ROOT, Settings, settings_env


def test_every_setting_is_documented_and_nothing_else() -> None:
    readme = (REPO_ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(DARKROOM_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    defaults = Settings(
        kafka={
            "schema_registry_url": "x",
            "schema_registry_auth": "a:b",
            "oauth_token_provider": "m:f",
        },
        blobs={"s3_endpoint": "http://x", "s3_region": "x"},
        worker={"api_token_file": "x"},
    )
    assert documented == set(settings_env(defaults))


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / "README.md").read_text()
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("make test")
