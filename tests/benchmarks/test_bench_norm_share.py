"""``benchmarks/bench_norm_share.py`` times a model against its BN-free copy."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch.nn as nn

from cnnlab import create_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_norm_share.py"


@pytest.fixture(scope="module")
def bench_norm_share():
    spec = importlib.util.spec_from_file_location("bench_norm_share", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_takes_out_every_batch_norm(bench_norm_share):
    model = create_model("resnet20")
    assert bench_norm_share.without_batch_norm(model) == 19  # the stem's and two per block
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_prints_both_speeds_and_the_share(bench_norm_share, capsys):
    speed = bench_norm_share.main(["--model", "resnet20", "--batch-size", "2", "--steps", "1", "--warmup", "0"])
    assert set(speed) == {"with BN", "without BN"} and all(value > 0 for value in speed.values())
    out = capsys.readouterr().out
    assert "resnet20, batch 2, fp32, channels_last" in out and "BN's share of the step" in out


def test_a_model_without_batch_norm_is_refused(bench_norm_share):
    with pytest.raises(SystemExit, match="no BatchNorm2d"):
        bench_norm_share.main(["--model", "lenet5", "--batch-size", "2", "--steps", "1"])


def test_an_unknown_model_is_one_line_and_a_non_zero_exit():
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", "nosuch", "--steps", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "error: unknown model 'nosuch'" in done.stderr and "Traceback" not in done.stderr


def test_fused_adds_the_fused_variant_between_the_two(bench_norm_share, capsys):
    from cnnlab.layers.fused_bn_relu import kernel_status

    if not kernel_status()[0]:
        pytest.skip(kernel_status()[1])
    speed = bench_norm_share.main(["--model", "resnet20", "--batch-size", "2", "--steps", "1", "--warmup", "0",
                                   "--fused"])
    assert set(speed) == {"with BN", "fused BN+ReLU", "without BN"}
    assert "fused / with:" in capsys.readouterr().out
