import json

import pytest
from torch import nn

from cnnlab import CnnlabError, create_model
from cnnlab.analysis import count_macs, receptive_field, stacked_receptive_field, summarize


def test_vgg16_reproduces_the_lectures_table():
    summary = summarize("vgg16")
    convs = [r for r in summary.layers if r.type == "Conv2d"]
    pools = [r for r in summary.layers if r.type == "MaxPool2d"]
    fcs = [r for r in summary.layers if r.type == "Linear"]
    assert convs[0].weights == 3 * 3 * 3 * 64 == 1_728
    assert convs[0].activation_values == 224 * 224 * 64
    assert convs[1].weights == 3 * 3 * 64 * 64
    assert pools[0].output_shape == (1, 64, 112, 112) and pools[0].params == 0
    assert convs[-1].weights == 3 * 3 * 512 * 512 and convs[-1].activation_values == 14 * 14 * 512
    assert pools[-1].activation_values == 7 * 7 * 512
    assert [r.weights for r in fcs] == [7 * 7 * 512 * 4096, 4096 * 4096, 4096 * 1000]
    assert fcs[0].weights == 102_760_448
    assert summary.total_params == 138_357_544
    # Rows of the lecture's table (input, 13 convs, 5 pools, 3 FCs); ours adds torchvision's 7x7 avgpool.
    lecture_rows = summary.input_values + sum(r.activation_values for r in convs + pools + fcs)
    assert summary.activation_values == lecture_rows + 7 * 7 * 512
    assert summary.activation_bytes == 4 * summary.activation_values
    # ReLUs are in place: they allocate nothing.
    assert all(r.activation_values == 0 and r.inplace for r in summary.layers if r.type == "ReLU")


def test_macs_follow_the_fvcore_convention():
    # Conv MACs: output elements x (input channels / groups) x kernel area; FC: in x out.
    vgg = summarize("vgg16")
    expected = sum(r.output_shape[1] * r.output_shape[2] * r.output_shape[3] * r.weights // r.output_shape[1]
                   for r in vgg.layers if r.type == "Conv2d") + (25088 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert vgg.total_macs == expected
    assert 15.4e9 < vgg.total_macs < 15.6e9
    assert 4.0e9 < summarize("resnet50").total_macs < 4.2e9
    assert count_macs("lenet5") == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10


def test_summary_json_shape():
    data = summarize("resnet18").to_dict()
    text = json.dumps(data)
    assert {"total_params", "total_macs", "activation_values", "activation_bytes", "layers"} <= set(data)
    for row in data["layers"]:
        assert {"name", "type", "output_shape", "params", "macs", "receptive_field"} <= set(row)
    assert data["total_params"] == sum(p.numel() for p in create_model("resnet18").parameters())
    assert "in-place" in text.lower() or "in place" in text.lower()


def test_summary_of_an_instance_runs_for_real_and_restores_train_mode():
    model = create_model("lenet5").train()
    summary = summarize(model)
    assert model.training
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summarize(model, (1, 32, 32)).layers[0].output_shape == (1, 6, 28, 28)
    with pytest.raises(CnnlabError, match="at layer 'fc1'"):  # LeNet's FC layers fix the input size
        summarize(model, (1, 64, 64))


def test_residual_addition_and_concatenation_are_counted():
    resnet = summarize("resnet18")
    # The residual addition makes a new tensor: a row of its own, whose field merges both paths.
    adds = [r for r in resnet.layers if r.type == "add"]
    assert [r.name for r in adds[:2]] == ["layer1.0.add", "layer1.1.add"] and len(adds) == 8
    conv2 = {r.name: r for r in resnet.layers}["layer1.0.conv2"]
    assert adds[0].receptive_field == conv2.receptive_field and adds[0].activation_values == 64 * 56 * 56
    googlenet = summarize("googlenet")
    cats = [r for r in googlenet.layers if r.type == "cat"]
    assert len(cats) == 9 and cats[0].output_shape == (1, 256, 28, 28)
    assert googlenet.unexecuted_params > 0 and googlenet.notes  # aux heads do not run in eval mode


def test_input_too_small_names_the_layer():
    with pytest.raises(CnnlabError, match=r"too small for vgg16: at layer 'features\.\d+'"):
        summarize("vgg16", (3, 16, 16))
    with pytest.raises(CnnlabError, match="three positive numbers"):
        summarize("vgg16", (3, 0, 224))


@pytest.mark.parametrize("layers", [1, 2, 3, 5])
def test_stacked_3x3_convs_see_2l_plus_1(layers):
    stack = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(layers)])
    fields = receptive_field(stack, (4, 32, 32))
    assert fields[-1].size == 2 * layers + 1 == stacked_receptive_field([3] * layers)
    assert [f.size for f in fields] == [2 * i + 3 for i in range(layers)]


def test_receptive_field_with_strides_and_pools():
    stack = nn.Sequential(nn.Conv2d(1, 1, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1),
                          nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, dilation=2, padding=2))
    sizes = [f.size for f in receptive_field(stack, (1, 64, 64))]
    # 7; +2*2 = 11; +2*4 = 19; dilation 2: +2*2*4 = 35
    assert sizes == [7, 11, 19, 35]
    assert [f.jump for f in receptive_field(stack, (1, 64, 64))] == [2, 4, 4, 4]
    assert stacked_receptive_field([7, 3, 3, 3], [2, 2, 1, 1], [1, 1, 1, 2]) == 35


def test_receptive_field_on_registered_models():
    vgg = {f.name: f.size for f in receptive_field("vgg16")}
    assert vgg["features.30"] == 212  # the well-known receptive field of VGG-16's last pool
    resnet = receptive_field("resnet50")
    assert max(f.size for f in resnet if f.name.startswith("layer4")) > 224
    # A global average pool sees its whole input.
    pooled = [f for f in resnet if f.name == "avgpool"][0]
    last_conv = [f for f in resnet if f.name.startswith("layer4") and f.type == "Conv2d"][-1]
    assert pooled.size == last_conv.size + 6 * last_conv.jump


@pytest.mark.parametrize("name", ["lenet5", "alexnet_paper", "vgg11_bn", "nin_cifar10", "googlenet", "resnet18",
                                  "preact_resnet18", "resnet20"])
def test_shape_only_tracing_matches_a_real_forward_pass(name):
    """Summaries of names run on the meta device with shortcuts; they must equal a real run."""
    meta = summarize(name).to_dict()
    real = summarize(create_model(name)).to_dict()
    assert meta == real
