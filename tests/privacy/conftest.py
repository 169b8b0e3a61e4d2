"""Fixtures of the privacy tests (helpers in ``privacy_fixtures``)."""

from __future__ import annotations

import pytest
from privacy_fixtures import PSEUDONYM_KEY


@pytest.fixture
def pseudonym_env(monkeypatch, tmp_path) -> str:
    monkeypatch.setenv("LGREC_PSEUDONYM_KEY", PSEUDONYM_KEY)
    monkeypatch.setenv("LGREC_CACHE_DIR", str(tmp_path / "cache"))
    return PSEUDONYM_KEY
