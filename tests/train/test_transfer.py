"""Transfer learning: weights from a run, a file or torchvision; the strategies; the lecture's table."""
import json

import pytest
import torch

from cnnlab import create_model
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import Trainer, load_checkpoint
from cnnlab.train.transfer import apply_strategy, choose_strategy, last_stage, load_pretrained, read_source

from .helpers import tiny

SMALL_RESNET = {"model": "resnet20", "model_args": {"widths": [4, 8, 16]}}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A ResNet-20 (narrow) trained one epoch on the digits: the pretrained network."""
    out = tmp_path_factory.mktemp("source") / "run"
    Trainer(tiny(epochs=1, **SMALL_RESNET), out, quiet=True).fit()
    return out


def _weights(run):
    return load_checkpoint(run, "last")[0]


def test_linear_probe_trains_the_head_only_and_keeps_bn_statistics(source_run, tmp_path):
    Trainer(tiny(epochs=1, weights=str(source_run), transfer="linear-probe", **SMALL_RESNET), tmp_path / "probe",
            quiet=True).fit()
    before, after = _weights(source_run), _weights(tmp_path / "probe")
    for key in before:
        if key.startswith("fc."):
            assert not torch.equal(before[key], after[key]), key  # a new head, trained
        else:
            assert torch.equal(before[key], after[key]), key  # weights and BN running statistics untouched


def test_probe_features_trains_the_head_as_the_plain_linear_probe_does(source_run, tmp_path, capsys):
    # Without augmentation the plain probe sees the same frozen features in the same order each
    # epoch, so the cached path must end at the same head, however much faster it got there.
    settings = dict(epochs=2, weights=str(source_run), transfer="linear-probe", augment="", precision="fp32",
                    **SMALL_RESNET)
    Trainer(tiny(**settings), tmp_path / "plain", quiet=True).fit()
    cached = Trainer(tiny(probe_features=True, **settings), tmp_path / "cached")
    assert cached.probe is not None and cached.probe.features.shape == (len(cached.train_set), 16)
    cached.fit()
    assert "probe_features: 16 features of" in capsys.readouterr().out
    plain, fast, source = _weights(tmp_path / "plain"), _weights(tmp_path / "cached"), _weights(source_run)
    for key in plain:
        if key.startswith("fc."):
            assert torch.allclose(plain[key], fast[key], atol=1e-5), key
        else:
            assert torch.equal(fast[key], source[key]), key  # the frozen layers untouched
    report = json.loads((tmp_path / "cached" / "report.json").read_text())
    # The training split's statistics reach the saved config of a transfer run, so `cnnlab eval`
    # normalises as the trainer did.
    assert report["config"]["mean"] == pytest.approx(cached.config.mean) and report["config"]["mean"] is not None
    assert report["test_top1"] == json.loads((tmp_path / "plain" / "report.json").read_text())["test_top1"]


def test_probe_features_is_for_the_linear_probe_of_pretrained_weights(source_run):
    with pytest.raises(CnnlabError, match="give weights"):
        tiny(probe_features=True).validate()
    with pytest.raises(CnnlabError, match="linear-probe"):
        tiny(probe_features=True, weights=str(source_run), transfer="fine-tune-all").validate()


def test_fine_tune_last_trains_the_last_stage_and_fine_tune_all_slows_the_backbone(source_run, tmp_path):
    Trainer(tiny(epochs=1, weights=str(source_run), transfer="fine-tune-last", **SMALL_RESNET), tmp_path / "last",
            quiet=True).fit()
    before, after = _weights(source_run), _weights(tmp_path / "last")
    assert torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert not torch.equal(before["layer3.2.conv2.weight"], after["layer3.2.conv2.weight"])
    trainer = Trainer(tiny(epochs=1, weights=str(source_run), transfer="fine-tune-all", **SMALL_RESNET),
                      tmp_path / "all", quiet=True)
    base = [group.get("initial_lr", group["lr"]) for group in trainer.optimizer.param_groups]
    assert sorted(set(base)) == pytest.approx([0.1 * trainer.lr, trainer.lr])
    head = [g for g, lr in zip(trainer.optimizer.param_groups, base) if lr == trainer.lr]
    assert {n for g in head for n in g["param_names"]} == {"fc.weight", "fc.bias"}


def test_auto_chooses_by_the_table_and_the_choice_is_kept_on_resume(source_run, tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["train", "--recipe", "lenet5-digits", "--model", "resnet20", "--set", "model_args={widths: [4, 8, 16]}",
                 "--epochs", "1", "--weights", str(source_run), "--out", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "training images per class" in printed and "-> fine-tune-last" in printed
    config = json.loads((out / "report.json").read_text())["config"]
    assert config["transfer"] == "fine-tune-last"  # resolved, so a resume uses the same strategy
    assert main(["train", "--resume", str(out), "--quiet"]) == 0


@pytest.mark.parametrize("per_class,similar,expected", [
    (20, True, "linear-probe"), (20, False, "fine-tune-last"), (300, True, "fine-tune-last"),
    (300, False, "fine-tune-all"), (5000, True, "fine-tune-all"),
])
def test_the_lectures_table(per_class, similar, expected):
    source = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    data = source if similar else ([0.1, 0.1, 0.1], [0.3, 0.3, 0.3])
    strategy, reasons = choose_strategy(per_class * 10, 10, *source, *data, 3, 3)
    assert strategy == expected and reasons[-1].endswith(expected)
    grey, reasons = choose_strategy(20 * 10, 10, *source, [0.5], [0.3], 3, 1)
    assert grey == "fine-tune-last" and "channel" in reasons[0]


def test_last_stage_of_the_zoo():
    assert last_stage(create_model("resnet18")) == ["layer4"]
    assert last_stage(create_model("resnet20")) == ["layer3"]
    assert last_stage(create_model("vgg11")) == ["classifier.0", "classifier.3"]
    assert last_stage(create_model("lenet5")) == ["fc2"]
    assert last_stage(create_model("densenet121")) == ["features.denseblock4", "features.norm5"]
    assert last_stage(create_model("convnext_tiny")) == ["features.7", "classifier.0"]
    assert last_stage(create_model("googlenet")) == ["inception5b"]  # not an auxiliary head


def test_weights_of_another_architecture_are_a_clear_error(source_run):
    state = read_source(str(source_run))[0]
    with pytest.raises(CnnlabError, match="do not fit") as info:
        load_pretrained(create_model("lenet5", num_classes=10, in_chans=1), state, "the run")
    assert "missing" in str(info.value) and "unexpected" in str(info.value)
    with pytest.raises(CnnlabError, match="unknown transfer strategy"):
        apply_strategy(create_model("lenet5"), "fine-tune-some")
    with pytest.raises(CnnlabError, match="no such file"):
        read_source("nowhere.safetensors")


def test_torchvision_weights_from_the_hub_cache_and_offline(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = tmp_path / "torch" / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CnnlabError, match="offline, put resnet18-f37072fd.pth") as info:
        read_source("torchvision:resnet18")
    assert str(cached) in str(info.value)
    cached.parent.mkdir(parents=True, exist_ok=True)
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, cached)
    state, description = read_source("torchvision:resnet18.IMAGENET1K_V1")
    assert "IMAGENET1K_V1" in description and torch.equal(state["conv1.weight"], reference["conv1.weight"])
    model = create_model("resnet18", num_classes=3)
    load_pretrained(model, state, description)
    assert torch.equal(model.conv1.weight, reference["conv1.weight"]) and model.fc.out_features == 3
    with pytest.raises(CnnlabError, match="resnet1800"):
        read_source("torchvision:resnet1800")
