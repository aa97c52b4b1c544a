"""Fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.real_traces import real_traces_root


@pytest.fixture(scope="session")
def real_traces() -> Path:
    """The real traces folder: ``$TA_REAL_TRACES`` or the in-repo ``tests/data/real``."""
    return real_traces_root()
