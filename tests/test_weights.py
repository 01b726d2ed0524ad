import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnlab import CnnlabError, create_model


def test_torchvision_checkpoint_loads_from_torch_and_safetensors_files(tmp_path):
    reference = torchvision.models.alexnet(weights=None).eval()
    state = reference.state_dict()
    torch.save(state, tmp_path / "alexnet.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "alexnet.safetensors")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        for file in ("alexnet.pth", "alexnet.safetensors"):
            model = create_model("alexnet", weights=str(tmp_path / file)).eval()
            assert torch.allclose(model(x), expected, atol=1e-5)


def test_wrapped_and_ddp_prefixed_checkpoints_load(tmp_path):
    state = create_model("lenet5").state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "ckpt.pt")
    model = create_model("lenet5", weights=str(tmp_path / "ckpt.pt"))
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


def test_mismatched_weights_list_missing_and_unexpected_keys(tmp_path):
    torch.save(create_model("vgg11").state_dict(), tmp_path / "vgg11.pth")
    with pytest.raises(CnnlabError) as error:
        create_model("vgg13", weights=str(tmp_path / "vgg11.pth"))
    message = str(error.value)
    assert "missing keys (18)" in message and "unexpected keys (14)" in message
    torch.save(create_model("lenet5", num_classes=10).state_dict(), tmp_path / "lenet.pth")
    with pytest.raises(CnnlabError, match=r"fc3.weight: file \(10, 84\) vs model \(4, 84\)"):
        create_model("lenet5", num_classes=4, weights=str(tmp_path / "lenet.pth"))


def test_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CnnlabError, match="cannot read"):
        create_model("lenet5", weights=str(tmp_path / "evil.pt"))


def test_bad_paths_and_files(tmp_path):
    with pytest.raises(CnnlabError, match="does not exist"):
        create_model("lenet5", weights=str(tmp_path / "nope.pth"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CnnlabError, match="cannot read"):
        create_model("lenet5", weights=str(tmp_path / "junk.safetensors"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CnnlabError, match="does not hold a state_dict"):
        create_model("lenet5", weights=str(tmp_path / "list.pt"))
