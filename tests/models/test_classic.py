"""LeNet-5, AlexNet (torchvision and paper), ZFNet and VGG at their paper configurations."""
import pytest
import torch

from cnnlab import create_model
from cnnlab.analysis import summarize
from cnnlab.errors import CnnlabError

from .parity import n_params, torchvision_parity


@pytest.mark.parametrize("name,expected", [
    ("alexnet", 61_100_840), ("vgg11", 132_863_336), ("vgg11_bn", 132_868_840), ("vgg13", 133_047_848),
    ("vgg13_bn", 133_053_736), ("vgg16", 138_357_544), ("vgg16_bn", 138_365_992), ("vgg19", 143_667_240),
    ("vgg19_bn", 143_678_248),
])
def test_torchvision_exact(name, expected):
    x = torch.randn(1, 3, 224, 224) if name in ("alexnet", "vgg16") else torch.randn(2, 3, 64, 64)
    torchvision_parity(name, [x], params=expected, rtol=0, atol=1e-5)


def test_lenet5_shapes_follow_the_paper():
    rows = {r.name: r for r in summarize("lenet5").layers}
    assert rows["conv1"].output_shape == (1, 6, 28, 28)
    assert rows["pool1"].output_shape == (1, 6, 14, 14)
    assert rows["conv2"].output_shape == (1, 16, 10, 10)
    assert rows["pool2"].output_shape == (1, 16, 5, 5)
    # C1 6*(25+1), C3 16*(6*25+1) fully connected, C5 120*(400+1), F6 84*(120+1), output 10*(84+1)
    assert n_params(create_model("lenet5")) == 6 * 26 + 16 * 151 + 120 * 401 + 84 * 121 + 10 * 85
    assert isinstance(create_model("lenet5").act1, torch.nn.Tanh)


def test_alexnet_paper_is_the_lectures_layer_list():
    rows = [r for r in summarize("alexnet_paper").layers if r.type in ("Conv2d", "MaxPool2d", "LocalResponseNorm", "Linear")]
    shapes = [(r.type, r.output_shape[1:]) for r in rows]
    assert shapes == [
        ("Conv2d", (96, 55, 55)), ("MaxPool2d", (96, 27, 27)), ("LocalResponseNorm", (96, 27, 27)),
        ("Conv2d", (256, 27, 27)), ("MaxPool2d", (256, 13, 13)), ("LocalResponseNorm", (256, 13, 13)),
        ("Conv2d", (384, 13, 13)), ("Conv2d", (384, 13, 13)), ("Conv2d", (256, 13, 13)),
        ("MaxPool2d", (256, 6, 6)), ("Linear", (4096,)), ("Linear", (4096,)), ("Linear", (1000,)),
    ]
    model = create_model("alexnet_paper")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    # CONV2, CONV4, CONV5 see only their own GPU's half; CONV3 and the FCs see everything.
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert rows[0].weights == 11 * 11 * 3 * 96 and rows[1].params == 0
    assert [m.p for m in model.classifier if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    weights = 11*11*3*96 + 5*5*48*256 + 3*3*256*384 + 3*3*192*384 + 3*3*192*256 + 9216*4096 + 4096*4096 + 4096*1000
    biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000
    assert n_params(model) == weights + biases


def test_alexnet_paper_with_one_tower_is_the_slides_simplified_list():
    with torch.device("meta"):
        model = create_model("alexnet_paper", towers=1)
    assert [m.groups for m in model.features if isinstance(m, torch.nn.Conv2d)] == [1, 1, 1, 1, 1]
    # Every conv sees all the previous layer's maps: CONV2 96, CONV4 and CONV5 384.
    weights = 11*11*3*96 + 5*5*96*256 + 3*3*256*384 + 3*3*384*384 + 3*3*384*256 + 9216*4096 + 4096*4096 + 4096*1000
    biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000
    assert n_params(model) == weights + biases  # 62.4M, the lesson's "62M"
    with pytest.raises(CnnlabError, match="towers must be 1"):
        create_model("alexnet_paper", towers=4)


def test_zfnet_changes_conv1_and_widens_conv3_to_5():
    model = create_model("zfnet")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert (convs[0].kernel_size, convs[0].stride) == ((7, 7), (2, 2))
    assert [c.out_channels for c in convs] == [96, 256, 512, 1024, 512]
    shapes = [r.output_shape[2] for r in summarize("zfnet").layers if r.type in ("Conv2d", "MaxPool2d")]
    assert shapes == [110, 55, 26, 13, 13, 13, 13, 6]  # the paper's Figure 3


def test_vgg_bn_trains_a_step():
    model = create_model("vgg11_bn", num_classes=4)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
