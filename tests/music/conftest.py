"""Fixtures shared by the music tests."""

from __future__ import annotations

import pytest

from seqkit.music.corpus import cached_bach_midis


@pytest.fixture(scope="session")
def chorale_cache(tmp_path_factory):
    """A cache folder holding the first three music21 Bach chorales, converted once per session
    (about a second each) and shared by every test that needs real chorales."""
    cache = tmp_path_factory.mktemp("music-cache")
    assert len(cached_bach_midis(cache, limit=3)) == 3
    return cache
