import pytest
import torch
from torch import nn

from cnnlab.layers import LayerNorm2d


class SmallNet(nn.Module):
    """Conv-BN, conv-LayerNorm2d, conv-GroupNorm, then a linear head: every kind of parameter."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.ln2 = LayerNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.gn3 = nn.GroupNorm(4, 16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.ln2(self.conv2(x)))
        x = torch.relu(self.gn3(self.conv3(x)))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture
def small_net():
    return SmallNet()


@pytest.fixture(autouse=True)
def _restore_determinism():
    """seed_everything(deterministic=True) changes global torch flags; put them back."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Runs write their data caches and data sets into a private folder, never the user's."""
    base = tmp_path_factory.mktemp("cnnlab-home")
    monkeypatch.setenv("CNNLAB_CACHE", str(base / "cache"))
    monkeypatch.setenv("CNNLAB_DATA", str(base / "datasets"))
