"""Data-parallel training under torchrun (gloo, CPU): the same algorithm as one process, faults, bad input.

The processes are real: ``cnnlab train --nproc 2`` and ``cnnlab check-distributed`` start them
through torch.distributed.run, as torchrun does. Weights are compared with a float32
tolerance: N processes add the same numbers in another order, so the last bits differ.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import InMemoryLoader
from cnnlab.data.loader import _EpochOrder
from cnnlab.errors import CnnlabError
from cnnlab.train import Callback, Trainer, load_checkpoint, load_recipe, train
from cnnlab.train.distributed import check_batch_split, usable_cores
from cnnlab.train.interrupt import Preempted
from cnnlab.train.launch import worker_argv

from .helpers import StopAt, tiny, weights

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
two_cores = pytest.mark.skipif(usable_cores() < 2, reason="two processes need two cores")

# The demo in fp32 (bf16 autocast rounds more than the order of a sum does), 2 short epochs.
DEMO = {"epochs": 2, "batch_size": 64, "device": "cpu", "precision": "fp32"}
DEMO_FLAGS = ["--epochs", "2", "--batch-size", "64", "--device", "cpu", "--set", "precision=fp32", "--quiet"]
# Float32 rounding of sums taken in another order, grown over the demo's 42 steps (measured: ~1e-6).
TRAINER_TOLERANCE = 1e-4


def largest_difference(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- sharding one permutation


@pytest.mark.parametrize("augment", ["flip, crop(pad=2)", "flip(mode=alternate), crop(pad=2), mixup(0.4)"])
def test_each_rank_gets_its_interleaved_share_of_the_single_process_batch(augment):
    images = torch.randint(0, 256, (70, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(70) % 5

    def loader(rank=0, world_size=1):
        return InMemoryLoader(images, labels, 16, augment=augment, seed=3, num_classes=5, rank=rank,
                              world_size=world_size)

    whole = list(loader().epoch_batches(1))
    shares = [list(loader(rank, 2).epoch_batches(1)) for rank in range(2)]
    assert len(loader()) == len(loader(1, 2)) == len(whole) == 5  # 4 batches of 16, then 6 images
    for index, (x, y) in enumerate(whole):
        for rank in range(2):
            # Same images, same augmentation draws, same mixed labels: samples rank, rank+2, ...
            assert torch.equal(shares[rank][index][0], x[rank::2]) and torch.equal(shares[rank][index][1], y[rank::2])
    # Resuming mid-epoch replays the rest of each share.
    assert torch.equal(list(loader(1, 2).epoch_batches(1, skip=3))[0][0], shares[1][3][0])
    # A last batch of fewer images than processes is left out (every process needs one).
    assert len(InMemoryLoader(images[:65], labels[:65], 16, world_size=2)) == 4
    assert len(InMemoryLoader(images[:66], labels[:66], 16, world_size=2)) == 5


def test_streaming_order_is_sharded_the_same_way():
    whole = list(_EpochOrder(70, seed=3, shuffle=True))
    shares = [list(_EpochOrder(70, 3, True, batch_size=16, rank=rank, world_size=2)) for rank in range(2)]
    for start in range(0, 70, 16):
        for rank in range(2):
            per_rank = 8
            index = start // 16 * per_rank
            assert shares[rank][index:index + per_rank] == whole[start:start + 16][rank::2][:per_rank]


def test_a_streamed_folder_is_sharded_the_same_way(tmp_path):
    from cnnlab.data import load_dataset, parse_augment
    from cnnlab.data.loader import build_loader

    from ..data.helpers import make_tree

    root = make_tree(tmp_path / "tree", per_class=7, splits=("train",))  # 21 images: batches of 8, 8, 5

    def batches(rank=0, world_size=1, skip=0):
        dataset = load_dataset(str(root), "train", in_memory=False, image_size=8)
        loader = build_loader(dataset, 8, train=True, augment=parse_augment(""), mean=None, std=None, seed=4,
                              rank=rank, world_size=world_size)
        return len(loader), list(loader.epoch_batches(2, skip=skip))

    count, whole = batches()
    shares = [batches(rank, 2) for rank in range(2)]
    assert count == shares[0][0] == shares[1][0] == 3
    for index, (images, labels) in enumerate(whole):
        for rank in range(2):
            assert torch.equal(shares[rank][1][index][0], images[rank::2])
            assert torch.equal(shares[rank][1][index][1], labels[rank::2])
    assert torch.equal(batches(1, 2, skip=2)[1][0][1], whole[2][1][1::2])  # resuming mid-epoch


def test_launcher_options_are_not_passed_to_the_processes():
    argv = ["train", "--nproc", "2", "--epochs", "3", "--rdzv-endpoint=h:1", "--nnod", "2", "--out", "x"]
    assert worker_argv(argv) == ["train", "--epochs", "3", "--out", "x"]


# ---------------------------------------------------------------------- the proof: the same algorithm


@two_cores
def test_check_distributed_two_processes_equal_one_and_accumulation_equals_the_whole_batch(tmp_path, capfd):
    out = tmp_path / "check.json"
    status = main(["check-distributed", "--nproc", "2", "--steps", "3", "--batch-size", "32", "--json", str(out)])
    printed = capfd.readouterr().out
    result = json.loads(out.read_text())
    cases = {case["name"].split(",")[-1].strip(): case for case in result["cases"]}
    assert status == 0 and result["passed"] and result["world_size"] == 2 and result["backend"] == "gloo", printed
    # 2 x 32 against 1 x 64, without BN and with synchronised BN; accumulation 2 x 32 against 64. The
    # tolerance is float32's own error in one process (against float64): tiny without BN, larger with.
    plain, synchronised = cases["LeNet-5 (no BN)"], cases["ResNet-20 with synchronised BN"]
    accumulation = next(c for c in result["cases"] if c["name"].startswith("gradient accumulation"))
    assert plain["difference"] <= plain["tolerance"] <= 1e-6
    assert accumulation["difference"] <= accumulation["tolerance"] <= 1e-6
    assert synchronised["difference"] <= synchronised["tolerance"] <= 1e-2
    # The control shows the check can fail: each process's own BN is another algorithm.
    control = next(c for c in result["cases"] if c["control"])
    assert control["difference"] > 5 * control["tolerance"]
    assert "largest difference" in printed and "same algorithm" in printed


@two_cores
def test_a_model_in_two_pipeline_stages_trains_as_one_process(tmp_path, capfd):
    """Model parallelism: LeNet-5's features on one process, its head on the other, 4 micro-batches,
    GPipe and 1F1B, against one process accumulating the same micro-batches."""
    out = tmp_path / "pipeline.json"
    assert main(["check-distributed", "--pipeline", "--steps", "2", "--batch-size", "32", "--json", str(out)]) == 0
    printed = capfd.readouterr().out
    results = json.loads(out.read_text())["pipeline"]
    assert [r["schedule"] for r in results] == ["gpipe", "1f1b"], printed
    for result in results:
        assert result["passed"] and result["difference"] <= 1e-7
        assert result["bubble_formula"] == pytest.approx(1 / 5)  # (S-1)/(M+S-1), S = 2, M = 4
        assert 0 <= result["bubble"] < 1 and result["busiest_stage_seconds"] > 0
    assert "(S-1)/(M+S-1) = 20%" in printed


@two_cores
def test_fully_sharded_processes_hold_half_the_model_each_and_train_as_one(tmp_path, capfd):
    out = tmp_path / "fsdp.json"
    assert main(["check-distributed", "--fsdp", "--steps", "2", "--batch-size", "32", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["passed"] and result["difference"] <= 1e-7, capfd.readouterr().out
    whole = result["parameters"]
    for row in result["per_rank"]:  # weights, gradients and SGD's momentum: each process a half
        assert abs(row["parameters"] - whole / 2) <= 16
        assert row["gradients"] == row["optimizer_state"] == row["parameters"]
    assert sum(row["parameters"] for row in result["per_rank"]) == whole


@two_cores
def test_alexnets_two_towers_on_two_processes_compute_the_grouped_network(tmp_path, capfd):
    """AlexNet's two-GPU split, one tower per process, against alexnet_paper's grouped convolutions:
    the same logits and the same weights after SGD steps; a split without the LRN halo differs."""
    out = tmp_path / "towers.json"
    assert main(["check-distributed", "--towers", "--steps", "2", "--image-size", "67", "--json", str(out)]) == 0
    printed = capfd.readouterr().out
    result = json.loads(out.read_text())
    assert result["passed"], printed
    assert result["forward_difference"] <= 1e-12 and result["weight_difference"] <= 1e-12
    assert result["largest_weight_change"] > 1e-4  # the steps did train
    assert result["control_without_halo"] > 1e-10
    assert result["per_rank_parameters"] == [result["parameters"] // 2] * 2
    assert "differs, as it should" in printed


def test_the_towers_need_two_processes(capsys):
    with pytest.raises(CnnlabError, match="two towers"):
        from cnnlab.train.towers import check_towers

        check_towers()
    assert main(["check-distributed", "--towers", "--nproc", "1"]) == 2
    assert "two towers, one per process: use --nproc 2, not 1" in capsys.readouterr().err


def test_trainer_accumulation_equals_the_whole_batch(tmp_path):
    whole = train(tiny(epochs=1, precision="fp32"), tmp_path / "whole", quiet=True)
    accumulated = train(tiny(epochs=1, precision="fp32", accumulate=4), tmp_path / "accumulated", quiet=True)
    assert accumulated["steps"] == whole["steps"] == 21  # one optimiser step per global batch
    assert largest_difference(weights(tmp_path / "whole"), weights(tmp_path / "accumulated")) < TRAINER_TOLERANCE


@two_cores
def test_two_processes_resume_a_single_process_run_and_end_with_its_weights(tmp_path, capfd):
    """A run saved by one process, continued by two (re-sharded): the weights of one uninterrupted process."""
    config = load_recipe("lenet5-digits", **DEMO)
    train(config, tmp_path / "straight", quiet=True)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", quiet=True, callbacks=[StopAt(21 + 5)])  # mid-epoch 2
    capfd.readouterr()
    assert main(["train", "--nproc", "2", "--resume", str(tmp_path / "run")]) == 0
    printed = " ".join(capfd.readouterr().out.split())
    assert "saved by 1 processes, continued by 2" in printed
    assert largest_difference(weights(tmp_path / "straight"), weights(tmp_path / "run")) < TRAINER_TOLERANCE
    _, state = load_checkpoint(tmp_path / "run", "last")
    assert state["step"] == 2 * 21 and state["world_size"] == 2
    assert json.loads((tmp_path / "run" / "report.json").read_text())["steps"] == 2 * 21


@two_cores
def test_two_nodes_on_the_loopback_train_one_run(tmp_path, capfd):
    """Two "nodes" (two launches with --nnodes 2, one process each) meet at a c10d rendezvous on 127.0.0.1."""
    endpoint = f"127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cnnlab", "train", "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", endpoint,
               "--rdzv-timeout", "60", "--out", str(out), "--epochs", "1", "--batch-size", "64", "--device", "cpu",
               "--set", "precision=fp32", "--quiet"]
    nodes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=120)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    train(load_recipe("lenet5-digits", **dict(DEMO, epochs=1)), tmp_path / "single", quiet=True)
    assert largest_difference(weights(tmp_path / "single"), weights(out)) < TRAINER_TOLERANCE
    assert json.loads((out / "report.json").read_text())["steps"] == 21


# ---------------------------------------------------------------------- faults: SIGTERM, SIGKILL


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers can only be installed from the main thread")
def test_sigterm_finishes_the_step_saves_and_says_how_to_resume(tmp_path, capsys):
    class SendSigterm(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 3:
                signal.raise_signal(signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted):
        train(tiny(), tmp_path, callbacks=[SendSigterm()])
    printed = " ".join(capsys.readouterr().out.split())
    assert "SIGTERM: stopping after this step" in printed and f"cnnlab train --resume {tmp_path}" in printed
    assert load_checkpoint(tmp_path, "last")[1]["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers can only be installed from the main thread")
def test_a_second_signal_stops_at_once_without_saving(tmp_path):
    class TwoSignalsInTheNextStep(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 2:  # both arrive during step 3's forward pass, before it can be saved
                trainer.model.register_forward_hook(
                    lambda *_: [signal.raise_signal(signal.SIGTERM), signal.raise_signal(signal.SIGTERM)])

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as raised:
        train(tiny(), tmp_path, quiet=True, callbacks=[TwoSignalsInTheNextStep()])
    assert not isinstance(raised.value, Preempted)
    assert not (tmp_path / "last.state.pt").exists()  # nothing saved
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers can only be installed from the main thread")
def test_sigterm_through_the_cli_exits_143_and_the_run_resumes(tmp_path, capsys):
    out = tmp_path / "run"

    def terminate_after_the_first_checkpoint():
        while not (out / "last.state.pt").exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_the_first_checkpoint, daemon=True)
    killer.start()
    assert main(["train", "--out", str(out), "--quiet", "--device", "cpu", "--epochs", "4"]) == 143
    killer.join()
    printed = " ".join(capsys.readouterr().out.split())
    assert "SIGTERM" in printed and f"continue with: cnnlab train --resume {out}" in printed
    assert not (out / "report.json").exists()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["steps"] == 4 * 41


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _rank(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environment = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        return int(environment.get(b"RANK", b"-1"))
    except OSError:
        return None


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the worker through Linux's /proc")
@two_cores
def test_a_worker_killed_with_sigkill_is_restarted_from_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    epochs = 4  # the kill comes within milliseconds of epoch 1's checkpoint: 3 epochs to spare
    command = [sys.executable, "-m", "cnnlab", "train", "--nproc", "2", "--max-restarts", "1", "--out", str(out),
               "--epochs", str(epochs), "--batch-size", "64", "--device", "cpu", "--set", "precision=fp32"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and launcher.poll() is None:
            if (out / "last.state.pt").exists():  # epoch 1 saved: kill rank 1 in the middle of the run
                for pid in _children(launcher.pid):
                    if _rank(pid) == 1:
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
            time.sleep(0.005)
        output = launcher.communicate(timeout=180)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert killed is not None, output
    assert launcher.returncode == 0, output
    assert "continuing" in output and "from its last checkpoint" in output, output
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == epochs * 21 and report["epochs"] == epochs
    # The restarted run ends where an uninterrupted one does.
    train(load_recipe("lenet5-digits", **dict(DEMO, epochs=epochs)), tmp_path / "straight", quiet=True)
    assert largest_difference(weights(tmp_path / "straight"), weights(out)) < TRAINER_TOLERANCE


@two_cores
def test_sigterm_to_torchrun_stops_every_process_after_the_step_and_saves(tmp_path):
    """torchrun passes SIGTERM on to its processes: they agree to stop after the same step, rank 0 saves."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cnnlab", "train", "--nproc", "2", "--out", str(out), "--epochs", "6",
               "--device", "cpu"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.state.pt").exists() and time.monotonic() < deadline and launcher.poll() is None:
            time.sleep(0.005)
        launcher.send_signal(signal.SIGTERM)
        output = launcher.communicate(timeout=120)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 143, output
    assert "SIGTERM: stopping after this step" in output, output
    assert f"continue with: cnnlab train --resume {out} --nproc 2" in " ".join(output.split())
    _, state = load_checkpoint(out, "last")
    assert state["step"] > 41 and state["world_size"] == 2 and not (out / "report.json").exists()


# ---------------------------------------------------------------------- bad input


def test_a_world_size_that_does_not_divide_the_batch_is_refused(capsys):
    assert main(["train", "--nproc", "2", "--batch-size", "33", "--device", "cpu"]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "global batch_size 33 does not split evenly into 2 processes" in message and "34" in message
    with pytest.raises(CnnlabError, match="2 processes x 2 accumulation steps; .*divisible by 4"):
        check_batch_split(66, 2, 2)
    with pytest.raises(CnnlabError, match="does not split into accumulate=4"):
        tiny(batch_size=66, accumulate=4).validate()


def test_more_processes_than_cores_is_refused(capsys):
    too_many = usable_cores() + 1
    assert main(["train", "--nproc", str(too_many), "--device", "cpu"]) == 2
    assert f"--nproc {too_many} is more than the {usable_cores()} CPU core" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("endpoint, expected", [
    (None, "did not gather 2 nodes within 2 s"),  # the other node never comes
    ("192.0.2.1:29400", "cannot reach the rendezvous endpoint 192.0.2.1:29400"),  # TEST-NET-1: no one there
])
def test_a_rendezvous_nobody_answers_is_reported_after_the_time_out(endpoint, expected, tmp_path, capsys):
    endpoint = endpoint or f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    status = main(["train", "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", endpoint, "--rdzv-timeout", "2",
                   "--device", "cpu", "--out", str(tmp_path / "run")])
    assert status == 2 and time.monotonic() - started < 60
    assert expected in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "run").exists()


def test_sync_bn_in_a_single_process_is_a_note(tmp_path, capsys):
    trainer = Trainer(tiny(model="resnet20", epochs=1, sync_bn=True), tmp_path)
    assert "sync_bn has nothing to synchronise in a single process" in " ".join(capsys.readouterr().out.split())
    assert isinstance(trainer.model.bn1, torch.nn.BatchNorm2d)
