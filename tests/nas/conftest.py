import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Searches write their data caches into a private folder, never the user's; the thread count
    a child's recipe sets (cpu_threads) is given back afterwards."""
    base = tmp_path_factory.mktemp("cnnlab-home")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_CACHE", str(base / "cache"))
        patch.setenv("CNNLAB_DATA", str(base / "datasets"))
        yield
    torch.set_num_threads(threads)
