"""cnnlab bench: the trainer, the synthetic ceiling and the usual loop, timed on the same steps."""
import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import load_dataset
from cnnlab.data.augment import parse_augment
from cnnlab.train.bench import _PILImages, _per_sample_pipeline, alternating_rates, fixed_batch_step


def test_bench_prints_the_three_loops_and_their_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--recipe", "lenet5-digits", "--steps", "3", "--warmup", "1", "--workers", "0",
                 "--set", "cpu_threads=1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    for loop in ("trainer", "synthetic", "usual"):
        assert result[loop] > 0
    assert result["trainer_over_synthetic"] == pytest.approx(result["trainer"] / result["synthetic"])
    assert result["trainer_over_usual"] == pytest.approx(result["trainer"] / result["usual"])
    assert (result["model"], result["data"], result["timed_steps"]) == ("lenet5", "digits", 3)
    assert "trainer / synthetic ceiling" in printed and "usual loop" in printed
    assert "--resume" not in printed  # the scratch run's interruption is not the user's business


def test_bench_without_the_usual_loop(capsys):
    assert main(["bench", "--recipe", "lenet5-digits", "--steps", "2", "--warmup", "1", "--no-usual"]) == 0
    printed = capsys.readouterr().out
    assert "trainer / synthetic ceiling" in printed and "trainer / usual loop" not in printed


@pytest.mark.parametrize("argv,fragment", [
    (["--steps", "500"], "do not fit in one epoch"),
    (["--steps", "0"], "at least 1"),
    (["--model", "resnet2000"], "resnet2000"),
])
def test_bench_user_errors_are_one_line(capsys, argv, fragment):
    assert main(["bench", "--recipe", "lenet5-digits", "--no-usual", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_usual_loop_serves_pil_images_like_torchvision_and_flips_at_random():
    digits = load_dataset("digits", "train", val_fraction=0)
    served = _PILImages(digits.images, digits.labels, transform=lambda image: image)
    image, label = served[3]
    assert image.size == tuple(digits.images.shape[-1:-3:-1]) and label == int(digits.labels[3])
    assert torch.equal(torch.tensor(np.array(image)), digits.images[3, 0])
    pipeline = _per_sample_pipeline(parse_augment("flip(mode=alternate), crop(pad=2)"))
    assert pipeline.spec == "flip, crop(pad=2)"


def test_alternating_rates_times_each_step_in_turn():
    calls = []
    rates = alternating_rates({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                              batch_size=4, warmup=1, timed=3)
    assert calls == ["a", "b"] * 4  # warm-up round, then three timed rounds, alternating
    assert set(rates) == {"a", "b"} and all(rate > 0 for rate in rates.values())


def test_fixed_batch_step_trains_the_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = fixed_batch_step(model, torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), optimizer)
    step()
    assert not torch.equal(model.weight, before) and model.weight.grad is not None


def test_bench_records_how_many_bn_relu_chains_really_ran_fused(tmp_path, capsys):
    # ResNet-20 on the digits in fp32, channels-last: the fused kernel's case (cnnlab.train.fusion).
    common = ["bench", "--recipe", "lenet5-digits", "--model", "resnet20", "--steps", "2", "--warmup", "1",
              "--no-usual", "--set", "precision=fp32", "--set", "channels_last=true", "--set", "cpu_threads=1"]
    fused_json, plain_json = tmp_path / "fused.json", tmp_path / "plain.json"
    assert main([*common, "--set", "fuse_bn_relu=true", "--json", str(fused_json)]) == 0
    fused = json.loads(fused_json.read_text())
    assert fused["fuse_bn_relu"] is True
    assert fused["fused_bn_relu_chains"]["trainer"] == fused["fused_bn_relu_chains"]["synthetic"] == 19
    assert "BN+ReLU chains fused 19" in capsys.readouterr().out
    assert main([*common, "--set", "fuse_bn_relu=false", "--json", str(plain_json)]) == 0
    assert json.loads(plain_json.read_text())["fused_bn_relu_chains"] == {"trainer": 0, "synthetic": 0}
