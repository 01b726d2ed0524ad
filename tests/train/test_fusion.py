"""Training with BN+ReLU fused (fuse_bn_relu): the log says so, a run resumes exactly, and true explains a refusal."""
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.layers.fused_bn_relu import kernel_status
from cnnlab.train import train

from .helpers import StopAt, tiny, weights

@pytest.fixture(autouse=True)
def kernel():
    usable, reason = kernel_status()  # built here, on first use, not while the tests are collected
    if not usable:
        pytest.skip(reason)


def _resnet(**changes):
    values = dict(model="resnet20", epochs=1, batch_size=128, augment="crop(pad=2)", precision="fp32",
                  channels_last=True)
    return tiny(**{**values, **changes})


def test_a_fused_run_says_so_and_resumes_to_the_same_weights(tmp_path, capsys):
    config = _resnet()
    straight = train(config, tmp_path / "straight")
    assert "19 BN+ReLU chains fused for training (fuse_bn_relu: auto)" in capsys.readouterr().out
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "stopped", quiet=True, callbacks=[StopAt(6)])
    resumed = train(resume=tmp_path / "stopped", quiet=True)
    expected, got = weights(tmp_path / "straight"), weights(tmp_path / "stopped")
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert resumed["test_top1"] == straight["test_top1"]


def test_true_where_fusion_cannot_be_says_why(tmp_path):
    with pytest.raises(CnnlabError, match="needs channels_last"):
        train(_resnet(fuse_bn_relu=True, channels_last=False), tmp_path / "refused", quiet=True)
    with pytest.raises(CnnlabError, match="fuse_bn_relu must be auto, true or false"):
        _resnet(fuse_bn_relu="yes").validate()
