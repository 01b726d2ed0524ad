import inspect
import json
import typing

import pytest
import torch

import cnnlab
from cnnlab import CnnlabError, create_model, list_models, model_info
from cnnlab.registry import _accepts

TORCHVISION_OVERLAP = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
    *[f"efficientnet_b{i}" for i in range(8)], "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]
CLASSIC = ["lenet5", "alexnet_paper", "zfnet", "nin", "nin_cifar10", "preact_resnet18", "resnet20", "plain20"]
POST_RESNET = ["se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d", "wrn28_10", "wrn16_8",
               "densenet_bc100_k12", "fractalnet20", "fractalnet40", "mobilenet_v1", "convnext_xlarge",
               "nasnet_a_mobile"]


def test_every_lecture_architecture_is_registered():
    names = set(list_models())
    assert set(TORCHVISION_OVERLAP + CLASSIC + POST_RESNET) <= names


def test_torchvision_names_are_recorded():
    for name in TORCHVISION_OVERLAP:
        assert model_info(name).torchvision_name == name


def test_list_models_filters_with_a_glob():
    assert list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", list_models())
def test_metadata_is_complete(name):
    info = model_info(name)
    assert info.family and info.paper.title and info.paper.authors and info.paper.venue
    assert 1989 <= info.paper.year <= 2025
    assert len(info.input_size) == 3 and info.weight_layers > 0
    assert info.dataset in ("imagenet", "cifar10", "cifar100", "mnist")
    for value in (info.reference_top1, info.reference_top5):
        assert value is None or 0 < value < 100
    if info.reference_top1 is not None or info.reference_top5 is not None:
        assert info.reference_note, "a reference accuracy must say where it comes from"
    json.dumps(info.as_dict())


def test_weight_layers_as_the_papers_count_them():
    assert model_info("vgg16").weight_layers == 16
    assert model_info("resnet152").weight_layers == 152
    assert model_info("resnet20").weight_layers == 20
    assert model_info("alexnet_paper").weight_layers == 8
    assert model_info("googlenet").weight_layers == 22


def test_unknown_model_names_the_closest():
    with pytest.raises(CnnlabError) as error:
        create_model("resnet5O")
    assert "resnet50" in str(error.value)


def test_create_model_defaults_and_overrides():
    lenet = create_model("lenet5")
    assert lenet.conv1.in_channels == 1 and lenet.num_classes == 10
    vgg = create_model("vgg11", num_classes=7, in_chans=1, dropout=0.1)
    assert vgg.get_classifier().out_features == 7
    assert vgg.features[0].in_channels == 1
    assert vgg.classifier[2].p == 0.1
    with pytest.raises(CnnlabError):
        create_model("vgg11", num_classes=0)
    with pytest.raises(CnnlabError, match="cannot build"):
        create_model("vgg11", no_such_option=3)


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "alexnet_paper", "zfnet", "vgg11_bn", "nin_cifar10",
                                  "googlenet", "resnet18", "preact_resnet18", "resnet20", "plain20"])
def test_uniform_interface(name):
    model = create_model(name, num_classes=5).eval()
    channels, height, width = model_info(name).input_size
    size = min(height, 96) if height > 64 else height
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.forward_head(features)
        assert torch.allclose(logits, model(x))
        assert logits.shape == (2, 5)
        pre_logits = model.forward_head(features, pre_logits=True)
    assert pre_logits.shape[0] == 2
    assert model.get_classifier() is model.get_submodule(model.classifier_name)
    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    with torch.no_grad():
        out = model(x)
    assert out.shape[0] == 2 and out.shape[1] != 3


def test_public_api():
    for name in ("create_model", "list_models", "model_info", "CnnlabError", "__version__"):
        assert hasattr(cnnlab, name)


def test_models_with_torchvision_weights_declare_their_input_statistics():
    # Pretrained torchvision weights expect ImageNet-normalised inputs.
    assert model_info("resnet50").mean == (0.485, 0.456, 0.406)
    assert model_info("resnet50").std == (0.229, 0.224, 0.225)
    assert model_info("resnet20").mean is None and model_info("lenet5").std is None
    assert model_info("vgg16").as_dict()["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_the_uniform_classifier_interface(name):
    # Built on the meta device: shapes only, so the whole zoo takes seconds.
    with torch.device("meta"):
        model = create_model(name, num_classes=7)
        head = model.get_classifier()
        assert isinstance(head, (torch.nn.Linear, torch.nn.Conv2d))
        assert (head.out_features if isinstance(head, torch.nn.Linear) else head.out_channels) == 7
        model.reset_classifier(3)
    head = model.get_classifier()
    assert (head.out_features if isinstance(head, torch.nn.Linear) else head.out_channels) == 3
    assert model.num_classes == 3


def test_zoo_table_is_public_and_has_the_comparison_columns():
    rows = cnnlab.zoo_table("efficientnet_b[07]")
    assert [r["name"] for r in rows] == ["efficientnet_b0", "efficientnet_b7"]
    b7 = rows[1]
    assert b7["input_size"] == [3, 600, 600] and b7["year"] == 2019
    assert b7["params"] == 66_347_960 and 37e9 < b7["macs"] < 38.5e9
    assert b7["weight_layers"] > 0 and b7["reference_top1"] and b7["reference_source"]


def test_zoo_rows_are_cached_by_source_and_torch_version(tmp_path, monkeypatch):
    from cnnlab.analysis import zoo

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    first = zoo.zoo_table("resnet[25]0")
    assert [r["name"] for r in first] == ["resnet20", "resnet50"] and first[1]["params"] == 25_557_032
    [cache_file] = (tmp_path / "zoo").glob("zoo-*.json")
    assert sorted(json.loads(cache_file.read_text())) == ["resnet20", "resnet50"]

    traced = []
    real_summarize = zoo.summarize
    monkeypatch.setattr(zoo, "summarize", lambda name: traced.append(name) or real_summarize(name))
    assert zoo.zoo_table("resnet[25]0") == first and traced == []  # read back, not traced
    assert zoo.zoo_table("resnet[25]0", cache=False) == first and traced == ["resnet20", "resnet50"]

    traced.clear()  # models registered by user code are never taken from the cache
    monkeypatch.setattr(zoo, "_is_shipped", lambda name: name != "resnet50")
    assert zoo.zoo_table("resnet[25]0") == first and traced == ["resnet50"]

    traced.clear()  # another torch (or another cnnlab source) is another cache file
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert zoo.zoo_table("resnet20") == first[:1] and traced == ["resnet20"]
    assert len(list((tmp_path / "zoo").glob("zoo-*.json"))) == 2

    cache_file.write_text("{half a file")  # unreadable: recomputed and rewritten, no error
    monkeypatch.undo()
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    assert zoo.zoo_table("resnet[25]0") == first
    assert sorted(json.loads(cache_file.read_text())) == ["resnet20", "resnet50"]


def _builder_chains() -> dict[str, list[str]]:
    """The registered models grouped by builder chain: builders whose code differs only in its
    constants (``resnet18`` and ``resnet152``, ``efficientnet_b0..b7``) pass overrides on alike."""
    chains: dict[tuple, list[str]] = {}
    for name in list_models():
        code = model_info(name).builder.__code__
        chains.setdefault((code.co_code, code.co_names), []).append(name)
    return {min(names, key=lambda n: model_info(n).weight_layers): names for names in chains.values()}


def _overridable_defaults(name: str) -> dict[str, object]:
    """Every keyword ``create_model`` lets through for ``name`` (registry._accepts), with its default."""
    builder = model_info(name).builder
    parameters = dict(inspect.signature(builder).parameters)
    returned = typing.get_type_hints(builder).get("return")
    if isinstance(returned, type):
        parameters = {**inspect.signature(returned).parameters, **parameters}
    return {key: p.default for key, p in parameters.items()
            if key not in ("self", "num_classes", "in_chans") and p.default is not p.empty and _accepts(builder, key)}


@pytest.mark.parametrize("name", sorted(_builder_chains()))
def test_every_accepted_override_reaches_the_model(name):
    # What create_model accepts must build or fail as a user error, never as a raw TypeError from
    # a builder that also passes the keyword itself ("got multiple values for keyword argument").
    for key, default in _overridable_defaults(name).items():
        try:
            with torch.device("meta"):
                create_model(name, **{key: default})
        except CnnlabError:
            pass


def test_builder_overrides_win_over_the_configuration_they_name():
    with torch.device("meta"):
        assert not create_model("resnet20", shortcut=False).layer1[0].has_shortcut
        assert create_model("plain20", shortcut=True).layer1[0].has_shortcut
        assert create_model("efficientnet_b0", resolution=256).pretrained_cfg.input_size == (3, 256, 256)
        assert create_model("resnext50_32x4d", groups=8).layer1[0].conv2.groups == 8
        assert create_model("se_resnet50", groups=2).layer1[0].conv2.groups == 2
        assert create_model("wide_resnet50_2", width_per_group=64).layer1[0].conv2.out_channels == 64
        assert "pool0" in dict(create_model("densenet_bc100_k12", stem="imagenet").features.named_children())
        assert len(create_model("densenet_bc100_k12", block_config=(2, 2)).features.denseblock2) == 2
    # The depth (and WRN's widening factor) a name states is not the caller's to override.
    for name, key in (("resnet20", "depth"), ("wrn28_10", "depth"), ("wrn28_10", "widen_factor")):
        with pytest.raises(CnnlabError, match=key):
            create_model(name, **{key: 16})
