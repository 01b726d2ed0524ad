import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache: the cache and data roots live in a temporary folder."""
    base = tmp_path_factory.mktemp("cnnlab-home")
    monkeypatch.setenv("CNNLAB_CACHE", str(base / "cache"))
    monkeypatch.setenv("CNNLAB_DATA", str(base / "datasets"))
    return base
