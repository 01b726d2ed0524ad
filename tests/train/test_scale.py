"""cnnlab scale-estimate: the ring all-reduce, its overlap with the backward pass, the scaled learning rate."""
import json

import pytest

from cnnlab.cli import main
from cnnlab.train.scale import (BUCKET_BYTES, estimate, exposed_seconds, gradient_bytes, measure_step_seconds,
                                ring_allreduce_seconds, scale_table)


def test_ring_allreduce_moves_2_n_minus_1_over_n_of_the_bytes():
    assert ring_allreduce_seconds(1e9, 1, 1e9, 1e-3) == 0.0
    assert ring_allreduce_seconds(1e9, 2, 1e9, 0.0) == pytest.approx(1.0)
    assert ring_allreduce_seconds(1e9, 4, 1e9, 0.0) == pytest.approx(1.5)
    assert ring_allreduce_seconds(1e9, 4, 1e9, 1e-3, buckets=2) == pytest.approx(1.5 + 2 * 3 * 1e-3 * 2)


def test_buckets_hide_under_the_backward_pass_but_the_last_one():
    # 4 buckets of 25 ms each behind a 1 s backward pass: only the last bucket is exposed.
    assert exposed_seconds(0.1, 1.0, 4) == pytest.approx(0.025)
    # Communication longer than the backward pass: the rest of it is exposed.
    assert exposed_seconds(2.0, 1.0, 4) == pytest.approx(2.0 - 0.75)
    assert exposed_seconds(0.0, 1.0, 4) == 0.0


def test_resnet50_on_256_gpus_as_goyal_et_al():
    nbytes = gradient_bytes("resnet50")
    assert nbytes == 4 * 25_557_032  # ResNet-50's parameters in fp32
    point = estimate(nbytes, 0.25, 32, 256, bandwidth=6.25e9)  # 50 Gbit/s Ethernet, as their cluster
    assert point.global_batch == 8192 and point.lr == pytest.approx(3.2) and point.warmup_epochs == 5
    buckets = -(-nbytes // BUCKET_BYTES)
    assert point.exposed_seconds == pytest.approx(point.allreduce_seconds / buckets)
    assert 0.9 < point.efficiency < 1.0
    rows = scale_table(nbytes, 0.25, 32, 256, bandwidth=6.25e9)
    assert [r.gpus for r in rows] == [2**k for k in range(11)]
    assert rows[0].efficiency == 1.0 and rows[0].warmup_epochs == 0 and rows[0].lr == pytest.approx(0.0125)
    efficiencies = [r.efficiency for r in rows]
    assert efficiencies == sorted(efficiencies, reverse=True)


def test_the_command_prints_the_table_and_its_assumptions(capsys):
    assert main(["scale-estimate", "resnet50", "--gpus", "256", "--bandwidth", "6.25", "--step-time", "0.25"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "on 256 GPUs:" in printed and "global batch 8,192 at lr 3.2 after a 5-epoch warm-up" in printed
    assert "2(N-1)/N x bytes / 6.25 GB/s" in printed and "assumptions" in printed
    assert main(["scale-estimate", "lenet5", "--gpus", "3", "--step-time", "0.01", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert 3 in [r["gpus"] for r in rows] and rows[-1]["gpus"] == 1024


def test_measured_step_time_and_bad_input(capsys):
    assert measure_step_seconds("lenet5", 4, "cpu", steps=1) > 0
    assert main(["scale-estimate", "lenet5", "--gpus", "2"]) == 2
    assert "--step-time SECONDS, or --measure" in capsys.readouterr().err
    assert main(["scale-estimate", "lenet5", "--gpus", "2048", "--step-time", "1"]) == 2
    assert "--gpus must lie in 1..1024" in capsys.readouterr().err
    assert main(["scale-estimate", "lenet5", "--gpus", "2", "--step-time", "1", "--bandwidth", "0"]) == 2
