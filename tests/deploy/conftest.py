"""The worker fixtures, for the test that scrapes a live worker."""

from tests.worker.conftest import stream_settings

__all__ = ["stream_settings"]
