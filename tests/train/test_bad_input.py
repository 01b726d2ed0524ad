"""Bad input to training: every case fails with a clear message and keeps the user's files.

Invalid hyper-parameters are refused before any data loads or any step runs; a loss that
turns NaN or infinite stops the run naming the step; running out of memory names the batch
size to shrink; a checkpoint from another model or a corrupt file is refused untouched.
"""
import dataclasses
import errno

import pytest
import torch
from torch import nn

from cnnlab import registry
from cnnlab.cli import main
from cnnlab.errors import CnnlabError, first_line, is_out_of_memory
from cnnlab.train import Callback, Trainer, checkpoint_tags, load_checkpoint, read_metrics_csv, train
from cnnlab.train import trainer as trainer_module

from .helpers import StopAt, tiny

STEPS_PER_EPOCH = 21  # the digits' 1,347 training images in batches of 64


def run_files(directory):
    """The bytes of every checkpoint file in a run directory."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.pt"))}


# ---------------------------------------------------------------------- hyper-parameters


@pytest.mark.parametrize("args,message", [
    (["--lr", "-0.1"], "lr must be a positive number, got -0.1"),
    (["--lr", "0"], "lr must be a positive number, got 0"),
    (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
    (["--epochs", "0"], "epochs must be at least 1, got 0"),
    (["--set", "schedule=exponential"], "unknown schedule 'exponential'; choose one of"),
    (["--set", "optimizer=lbfgs"], "unknown optimizer 'lbfgs'; choose one of sgd, adamw"),
    (["--set", "learning_rate=0.1"], "unknown key 'learning_rate'"),
    (["--set", "momentum=1.5"], "momentum must be a number in [0.0, 1.0), got 1.5"),
    (["--set", "weight_decay=-1e-4"], "weight_decay must be a number in [0.0, inf)"),
    (["--set", "gamma=0"], "gamma must be a number in (0.0, 1.0]"),
    (["--set", "precision=fp8"], "unknown precision 'fp8'; choose one of auto, fp32, bf16, fp16"),
    (["--set", "init=lecun"], "unknown init scheme 'lecun'"),
    (["--set", "augment=flop"], "unknown augmentation 'flop'"),
])
def test_invalid_hyper_parameters_are_refused_before_any_data_loads(tmp_path, capsys, monkeypatch, args, message):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the config was checked")

    monkeypatch.setattr(trainer_module, "load_dataset", no_data)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not out.exists()


# ---------------------------------------------------------------------- a loss that explodes


class PoisonWeights(Callback):
    """After optimiser step ``step``, sets a bias of the classifier to ``value``, so the next step's loss is not finite."""

    def __init__(self, step, value=float("nan")):
        self.step, self.value = step, value

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            with torch.no_grad():
                list(trainer.model.parameters())[-1].view(-1)[0] = self.value


class SnapshotAfterEpoch(Callback):
    """Keeps the bytes of the run's checkpoints as they were at the end of each epoch."""

    def __init__(self):
        self.files = {}

    def on_epoch_end(self, trainer, row):
        self.files[row["epoch"]] = run_files(trainer.out_dir)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, value):
    out, snapshot = tmp_path / "run", SnapshotAfterEpoch()
    bad_step = STEPS_PER_EPOCH + 4  # epoch 2, batch 4
    with pytest.raises(CnnlabError) as caught:
        train(tiny(epochs=3), out, quiet=True, callbacks=[snapshot, PoisonWeights(bad_step - 1, value)])
    message = " ".join(str(caught.value).split())
    assert f"NaN or infinite at step {bad_step} (epoch 2, batch 4 of {STEPS_PER_EPOCH}" in message
    assert "without saving" in message and "is unchanged" in message and "--lr" in message
    assert set(snapshot.files) == {1}
    assert set(snapshot.files[1]) == {"last.safetensors", "last.state.pt", "best.safetensors", "best.state.pt"}
    # Not a byte changed since epoch 1: the weights after the bad step are never saved.
    assert run_files(out) == snapshot.files[1]
    assert [row["epoch"] for row in read_metrics_csv(out / "metrics.csv")] == [1]
    assert not (out / "report.json").exists()


@pytest.mark.parametrize("epoch", [1, 2])
def test_weights_broken_by_the_last_step_of_an_epoch_are_never_saved(tmp_path, epoch):
    # The step's own loss was computed before the update, so only the weights show it.
    out, snapshot = tmp_path / "run", SnapshotAfterEpoch()
    with pytest.raises(CnnlabError) as caught:
        train(tiny(epochs=3), out, quiet=True, callbacks=[snapshot, PoisonWeights(epoch * STEPS_PER_EPOCH)])
    message = " ".join(str(caught.value).split())
    assert f"the model's weights became NaN or infinite by step {epoch * STEPS_PER_EPOCH}" in message
    if epoch == 1:
        assert "no checkpoint had been written yet" in message and checkpoint_tags(out) == []
    else:
        assert "is unchanged" in message and run_files(out) == snapshot.files[1]


def test_a_non_finite_loss_in_the_first_epoch_leaves_no_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(CnnlabError, match="at step 6 .*no checkpoint had been written yet"):
        train(tiny(), out, quiet=True, callbacks=[PoisonWeights(5)])
    assert checkpoint_tags(out) == []


def test_on_a_gpu_the_loss_is_checked_every_few_steps_and_the_message_gives_the_range(tmp_path, monkeypatch):
    # On a GPU each check waits for the GPU, so the loop checks every FINITE_CHECK_EVERY_GPU
    # steps; the message then names the steps since the last check.
    original_setup = Trainer._setup

    def setup_checking_every_8_steps(self):
        original_setup(self)
        self._finite_check_every = 8

    monkeypatch.setattr(Trainer, "_setup", setup_checking_every_8_steps)
    out = tmp_path / "run"
    with pytest.raises(CnnlabError, match=f"between steps 9 and 16 \\(from epoch 1, batch 9 of {STEPS_PER_EPOCH};"):
        train(tiny(), out, quiet=True, callbacks=[PoisonWeights(10)])
    assert checkpoint_tags(out) == []


def test_a_diverging_run_through_the_cli_exits_2_without_a_traceback(tmp_path, capsys):
    # A learning rate far too high for plain SGD, no warm-up, no clipping, no BN in LeNet-5.
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), "--quiet", "--epochs", "2", "--lr", "1e6", "--set", "schedule=constant",
                 "--set", "momentum=0.99", "--set", "device=cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "the training loss became NaN or infinite at step" in err and "Traceback" not in err


# ---------------------------------------------------------------------- out of memory


class RunOutOfMemory(Callback):
    """Raises what torch raises when an allocation fails, after optimiser step ``step``."""

    def __init__(self, step, error):
        self.step, self.error = step, error

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            raise self.error


CUDA_OOM = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")
CPU_OOM = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize("error", [CUDA_OOM, CPU_OOM, MemoryError()], ids=["cuda", "cpu-allocator", "numpy"])
def test_running_out_of_memory_names_a_smaller_batch_and_keeps_the_checkpoint(tmp_path, error):
    out = tmp_path / "run"
    with pytest.raises(CnnlabError) as caught:
        train(tiny(epochs=3), out, quiet=True, callbacks=[RunOutOfMemory(STEPS_PER_EPOCH + 2, error)])
    message = " ".join(str(caught.value).split())
    assert "out of memory on cpu while training with batch size 64" in message
    assert "--batch-size 32" in message and "linear scaling rule" in message and "is unchanged" in message
    assert load_checkpoint(out, "last")[1]["epoch"] == 1  # the end of epoch 1, not the broken step


def test_running_out_of_memory_while_evaluating_names_the_evaluation_batch(tmp_path, monkeypatch):
    def evaluate_out_of_memory(*args, **kwargs):
        raise CUDA_OOM

    monkeypatch.setattr(trainer_module, "evaluate", evaluate_out_of_memory)
    with pytest.raises(CnnlabError, match="while evaluating with batch size 128: try --set eval_batch_size=64"):
        train(tiny(), tmp_path / "run", quiet=True)


def test_running_out_of_memory_while_setting_up_does_not_blame_the_batch(tmp_path, monkeypatch):
    def build_model_out_of_memory(*args, **kwargs):
        raise CPU_OOM

    monkeypatch.setattr(trainer_module, "build_model", build_model_out_of_memory)
    with pytest.raises(CnnlabError, match="while setting up the run .*in_memory=false") as caught:
        train(tiny(), tmp_path / "run", quiet=True)
    assert "--batch-size" not in str(caught.value)


def test_a_resumed_run_may_take_a_smaller_evaluation_batch(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), out, quiet=True, callbacks=[StopAt(5)])
    report = Trainer.resume(out, quiet=True, overrides={"eval_batch_size": 7}).fit()
    assert report["config"]["eval_batch_size"] == 7


def test_other_errors_are_not_mistaken_for_out_of_memory():
    assert is_out_of_memory(CUDA_OOM) and is_out_of_memory(CPU_OOM) and is_out_of_memory(MemoryError())
    assert is_out_of_memory(OSError(errno.ENOMEM, "Cannot allocate memory"))  # a worker that cannot fork
    assert not is_out_of_memory(OSError(errno.ENOENT, "No such file or directory"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only what allocators raise


def test_out_of_memory_in_cnnlab_eval_exits_2_with_advice(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    train(tiny(epochs=1), out, quiet=True)
    import cnnlab.eval as evaluate_module

    def out_of_memory(*args, **kwargs):
        raise CUDA_OOM

    monkeypatch.setattr(evaluate_module, "evaluate_run", out_of_memory)
    assert main(["eval", str(out)]) == 2
    err = capsys.readouterr().err
    assert "out of memory (CUDA out of memory." in err and "try a smaller --batch-size" in err
    assert "Traceback" not in err

    def numpy_out_of_memory(*args, **kwargs):
        raise MemoryError()  # numpy's carries no message

    monkeypatch.setattr(evaluate_module, "evaluate_run", numpy_out_of_memory)
    assert main(["eval", str(out)]) == 2
    assert "out of memory (MemoryError): try a smaller --batch-size" in capsys.readouterr().err
    assert first_line(RuntimeError("\n  CUDA out of memory.\nmore")) == "CUDA out of memory."


def test_errors_are_printed_whole_on_one_line_with_their_brackets(tmp_path, capsys):
    # Rich would read "[raw]" as a style tag and drop it; and a long path must not be broken.
    missing = tmp_path / ("a-long-folder-name-" * 6) / "[raw]" / "images"
    assert main(["train", "--out", str(tmp_path / "run"), "--data", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and err.count("\n") == 1


def test_a_full_disk_is_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from cnnlab.train import logger as logger_module

    real_write = logger_module.write_metrics_csv

    def write_until_the_disk_fills(path, history):
        if len(history) >= 2:
            raise OSError(28, "No space left on device")
        return real_write(path, history)

    monkeypatch.setattr(logger_module, "write_metrics_csv", write_until_the_disk_fills)
    out = tmp_path / "run"
    with pytest.raises(CnnlabError, match="cannot write .*metrics.csv'?: No space left on device; free some space"):
        train(tiny(epochs=3), out, quiet=True)
    assert load_checkpoint(out, "last")[1]["epoch"] == 1
    assert [row["epoch"] for row in read_metrics_csv(out / "metrics.csv")] == [1]


# ---------------------------------------------------------------------- resuming from the wrong files


def test_resuming_with_a_checkpoint_of_another_model_is_refused_and_the_files_are_kept(tmp_path, capsys,
                                                                                        monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), out, quiet=True, callbacks=[StopAt(5)])
    before = run_files(out)
    # The model's definition changed since the checkpoint was written (an edited model file).
    info = registry.model_info("lenet5")

    def changed_lenet5(**kwargs):
        model = info.builder(**kwargs)
        model.extra = nn.Linear(4, 4)
        return model

    monkeypatch.setitem(registry._REGISTRY, "lenet5", dataclasses.replace(info, builder=changed_lenet5))
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "do not fit" in err and "missing keys (2)" in err and "extra.weight" in err and "Traceback" not in err
    assert run_files(out) == before


@pytest.mark.parametrize("damaged", ["last.safetensors", "last.state.pt"])
def test_resuming_from_a_corrupt_checkpoint_is_refused_and_the_file_is_kept(tmp_path, capsys, damaged):
    out = tmp_path / "run"
    train(tiny(epochs=1), out, quiet=True)
    path = out / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = run_files(out)
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "corrupt or incomplete" in err and "Traceback" not in err
    assert f"{damaged}'" in "".join(err.split())  # (the console may wrap the path)
    assert run_files(out) == before
