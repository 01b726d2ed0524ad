"""The trainer as a user relies on it: the demo's accuracy, exact resume, Ctrl-C, BN at eval, files, recipes, CLI."""
import json
import re
import signal
import threading

import pytest
import torch
from torch import nn

from cnnlab import create_model
from cnnlab.cli import main
from cnnlab.data import InMemoryLoader
from cnnlab.errors import CnnlabError
from cnnlab.train import (
    METRIC_COLUMNS,
    Callback,
    TrainConfig,
    Trainer,
    check_config,
    checkpoint_tags,
    evaluate,
    field_names,
    list_recipes,
    load_checkpoint,
    load_recipe,
    parse_set,
    predict_logits,
    read_metrics_csv,
    train,
)

from cnnlab.device import resolve_precision

from ..data.helpers import make_tree
from .helpers import StopAt, tiny, weights

REQUIRED_RECIPES = {"lenet5-digits", "resnet20-cifar10", "resnet32-cifar10", "resnet44-cifar10", "resnet56-cifar10",
                    "resnet110-cifar10", "plain20-cifar10", "plain56-cifar10", "fast-cifar10", "resnet50-imagenet",
                    "alexnet-imagenet"}
REPORT_KEYS = {"model", "dataset", "epochs", "train_top1", "test_top1", "test_top5", "best_epoch", "wall_seconds",
               "images_per_second", "seed", "versions", "device", "precision", "config"}


# ---------------------------------------------------------------------- the demo, files, CLI


def test_demo_recipe_through_the_cli(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["train", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    # The demo's promise: LeNet-5 on the digits reaches at least 97% test accuracy.
    assert report["test_top1"] >= 97.0, report["test_top1"]
    assert REPORT_KEYS <= set(report)
    assert report["model"] == "lenet5" and report["dataset"] == "digits" and report["epochs"] == 15
    assert report["test_top5"] is not None and 1 <= report["best_epoch"] <= 15
    assert {"torch", "torchvision", "cnnlab", "python"} <= set(report["versions"])
    # The fast default of this CPU: bf16 autocast where it has native bf16, fp32 elsewhere.
    expected = resolve_precision(torch.device("cpu"), "auto", "auto")
    assert report["precision"]["name"] == expected.name and report["device"]["type"] == "cpu"
    assert report["precision"]["channels_last"] == expected.channels_last
    assert report["config"]["mean"] and report["config"]["std"] and report["config"]["image_size"] == 32
    for name in ("report.json", "curves.png", "last.safetensors"):
        assert str(out / name) in printed
    rows = read_metrics_csv(out / "metrics.csv")
    assert tuple(rows[0]) == METRIC_COLUMNS and [r["epoch"] for r in rows] == list(range(1, 16))
    assert all(r["val_top5"] is not None and r["images_per_second"] > 0 for r in rows)
    assert rows[-1]["train_top1"] == pytest.approx(report["train_top1"], abs=1e-3)
    assert max(r["val_top1"] for r in rows) == pytest.approx(report["best_val_top1"], abs=1e-3)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"last", "best"} <= set(checkpoint_tags(out))
    assert load_recipe(out / "config.yaml").mean == report["config"]["mean"]  # the run's config is a recipe


def test_out_dir_with_a_run_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "run"
    train(tiny(epochs=1), out, quiet=True)
    before = (out / "last.safetensors").read_bytes(), (out / "last.state.pt").read_bytes()
    assert main(["train", "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "Traceback" not in err
    assert ((out / "last.safetensors").read_bytes(), (out / "last.state.pt").read_bytes()) == before
    # --overwrite with a mistake in the new config still keeps the old run.
    assert main(["train", "--out", str(out), "--overwrite", "--model", "lenet6"]) == 2
    assert ((out / "last.safetensors").read_bytes(), (out / "last.state.pt").read_bytes()) == before
    # A finished run resumes to its report; --overwrite replaces it.
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert main(["train", "--out", str(out), "--epochs", "1", "--batch-size", "128", "--overwrite", "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["config"]["batch_size"] == 128


@pytest.mark.parametrize("args,message", [
    (["--model", "lenet6"], "unknown model 'lenet6'"),
    (["--data", "no-such-set"], "no data set named 'no-such-set'"),
    (["--recipe", "resnet21-cifar10"], "unknown recipe 'resnet21-cifar10'"),
    (["--set", "learning_rate=0.1"], "unknown key 'learning_rate'"),
    (["--set", "epochs=many"], "epochs must be an integer"),
    (["--set", "dropout=0.3"], "has no 'dropout' setting"),
    (["--set", "schedule=exponential"], "unknown schedule"),
    (["--resume", "MISSING"], "cannot resume"),
])
def test_user_errors_exit_2(tmp_path, capsys, args, message):
    args = [a.replace("MISSING", str(tmp_path)) for a in args]
    out = [] if "--resume" in args else ["--out", str(tmp_path / "x")]
    assert main(["train", *out, *args]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "x" / "last.safetensors").exists()


def test_tensorboard_flag(tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert main(["train", "--out", str(tmp_path), "--tensorboard", "--epochs", "1"]) == 2
        assert "pip install" in capsys.readouterr().err
    else:
        assert main(["train", "--out", str(tmp_path), "--tensorboard", "--epochs", "1", "--quiet"]) == 0
        assert any((tmp_path / "tensorboard").iterdir())


def test_recipes_command(capsys):
    assert main(["recipes"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in REQUIRED_RECIPES) and "(default)" in printed
    assert main(["recipes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "model", "data", "epochs", "description"} <= set(rows[0])


# ---------------------------------------------------------------------- recipes and config


def test_shipped_recipes_load_and_validate():
    rows = {row["name"]: row for row in list_recipes()}
    assert REQUIRED_RECIPES <= set(rows)
    for name in rows:
        config = check_config(load_recipe(name))
        assert config.recipe == name and config.description
    resnet = load_recipe("resnet20-cifar10")
    assert (resnet.lr, resnet.momentum, resnet.weight_decay, resnet.batch_size) == (0.1, 0.9, 1e-4, 128)
    assert resnet.milestones == [91, 136] and resnet.epochs == 182 and resnet.augment == "flip, crop(pad=4)"
    r50 = load_recipe("resnet50-imagenet")
    assert (r50.lr, r50.batch_size, r50.weight_decay, r50.milestones, r50.epochs) == (0.1, 256, 1e-4, [30, 60], 90)
    alex = load_recipe("alexnet-imagenet")
    assert (alex.lr, alex.weight_decay, alex.dropout, alex.schedule) == (0.01, 5e-4, 0.5, "plateau")
    assert load_recipe().recipe == "lenet5-digits"


def test_airbench94_recipe_is_fast_cifar10_with_the_measured_overrides():
    # BENCHMARKS.md measured airbench94's settings as fast-cifar10 plus these --set values (94.02% mean
    # over three seeds); the recipe must be exactly that run, so its figures stay the recipe's.
    measured = parse_set(["epochs=10", "batch_size=1024", "lr=1.5", "momentum=0.85", "weight_decay=0.00133",
                          "no_decay_norm_and_bias=false", "pct_start=0.23", "div_factor=5.0",
                          "final_div_factor=2.857", "cycle_momentum=false", "anneal_strategy=linear",
                          "lookahead_decay=0.95", "whiten_bias_epochs=3"])
    expected = load_recipe("fast-cifar10", measured).to_dict()
    recipe = load_recipe("airbench94-cifar10").to_dict()
    differing = {key: (recipe[key], expected[key]) for key in recipe
                 if recipe[key] != expected[key] and key not in ("recipe", "description")}
    assert differing == {}


def test_overrides_and_types(tmp_path):
    values = parse_set(["lr=1e-3", "milestones=[30, 60]", "nesterov=true", "image_size=224x224", "mean=0.5",
                        "dropout=null", "batch-size=64"])
    config = load_recipe("resnet50-imagenet", values)
    assert config.lr == 0.001 and config.milestones == [30.0, 60.0] and config.nesterov is True
    assert config.image_size == "224x224" and config.mean == [0.5] and config.batch_size == 64
    assert load_recipe(None, image_size=32).image_size == 32
    with pytest.raises(CnnlabError, match=r"unknown key 'epoch' \(did you mean 'epochs'\?\).*Valid keys: recipe"):
        load_recipe(None, epoch=3)
    with pytest.raises(CnnlabError, match="nesterov must be true/false"):
        load_recipe(None, nesterov="maybe")
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("model: resnet20\nepochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(CnnlabError, match="unknown key 'learning_rate' in recipe file"):
        load_recipe(recipe)
    recipe.write_text("model: resnet20\nepochs: 3\n")
    assert load_recipe(str(recipe)).recipe == "mine" and load_recipe(recipe).model == "resnet20"
    assert set(field_names()) == {f for f in TrainConfig().to_dict()}


def test_schedule_epochs_become_steps_and_default_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(tiny(epochs=4, schedule="step", milestones=[2, 3], warmup_epochs=1, scale_lr=True), quiet=True)
    steps = trainer.steps_per_epoch
    assert steps == 21  # 1,293 training digits in batches of 64
    assert trainer.schedule.config["milestones"] == [2 * steps, 3 * steps]
    assert trainer.schedule.config["warmup_steps"] == steps
    assert trainer.lr == pytest.approx(0.05 * 64 / 256)  # the linear scaling rule
    assert re.fullmatch(r"runs/lenet5-digits-\d{8}-\d{6}", trainer.out_dir.as_posix())
    # Norm parameters and biases are not decayed.
    groups = trainer.optimizer.param_groups
    assert groups[0]["weight_decay"] > 0 and groups[1]["weight_decay"] == 0
    assert all(p.ndim == 1 for p in groups[1]["params"])
    plateau = Trainer(tiny(schedule="plateau"), tmp_path / "p", quiet=True)
    assert plateau.plateau is not None


def test_one_cycle_momentum_cycles_unless_told_to_keep_the_configs(tmp_path):
    cycling = Trainer(tiny(schedule="onecycle", warmup_epochs=0, momentum=0.8), tmp_path / "c", quiet=True)
    assert cycling.optimizer.param_groups[0]["momentum"] == pytest.approx(0.95)  # Smith's 0.95 -> 0.85 -> 0.95
    fixed = Trainer(tiny(schedule="onecycle", warmup_epochs=0, momentum=0.8, cycle_momentum=False),
                    tmp_path / "f", quiet=True)
    fixed.fit()
    assert all(group["momentum"] == 0.8 for group in fixed.optimizer.param_groups)
    assert fixed.schedule.config["cycle_momentum"] is False
    linear = Trainer(tiny(schedule="onecycle", warmup_epochs=0, anneal_strategy="linear"), tmp_path / "l", quiet=True)
    assert linear.schedule.config["anneal_strategy"] == "linear"
    with pytest.raises(CnnlabError, match="unknown anneal_strategy 'cosine'; choose one of cos, linear"):
        check_config(load_recipe(None, schedule="onecycle", anneal_strategy="cosine"))
    with pytest.raises(CnnlabError, match="anneal_strategy only applies to schedule: onecycle, not 'step'"):
        check_config(load_recipe(None, schedule="step", anneal_strategy="linear"))


def test_regularisation_overrides_reach_the_model(tmp_path):
    trainer = Trainer(tiny(model="resnet20", drop_path_rate=0.1, init="kaiming",
                           model_args={"widths": [4, 8, 16]}), tmp_path, quiet=True)
    rates = [m.drop_prob for m in trainer.model.modules() if hasattr(m, "drop_prob")]
    assert rates and max(rates) == pytest.approx(0.1)
    assert trainer.model.conv1.in_channels == 1 and trainer.model.fc.out_features == 10  # from the data


# ---------------------------------------------------------------------- resume and Ctrl-C


@pytest.mark.parametrize("schedule", [
    dict(schedule="cosine", warmup_epochs=0.5),
    dict(schedule="plateau", warmup_epochs=0.5, plateau_patience=0, gamma=0.5),
    # airbench94's lookahead (its slow weights are part of the resumable state) and alternating flip
    dict(schedule="onecycle", warmup_epochs=0.0, lookahead_every=4, augment="flip(mode=alternate), crop(pad=2)",
         ema_decay=0.9),
])
def test_resume_gives_identical_weights(tmp_path, schedule):
    config = tiny(**schedule)
    straight = train(config, tmp_path / "straight", quiet=True)

    # Stopped after epoch 1 (an epoch-end Ctrl-C), then resumed for epoch 2.
    class StopAfterEpoch(Callback):
        def on_epoch_end(self, trainer, row):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "epoch", quiet=True, callbacks=[StopAfterEpoch()])
    resumed = train(resume=tmp_path / "epoch", quiet=True)

    # Stopped in the middle of epoch 2, then resumed from that step.
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "step", quiet=True, callbacks=[StopAt(21 + 7)])
    resumed_mid = train(resume=tmp_path / "step", quiet=True)

    expected = weights(tmp_path / "straight")
    for run in ("epoch", "step"):
        got = weights(tmp_path / run)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected), run
    for report in (resumed, resumed_mid):
        assert report["test_top1"] == straight["test_top1"] and report["best_epoch"] == straight["best_epoch"]
        assert report["steps"] == straight["steps"] == 2 * 21
    rows = read_metrics_csv(tmp_path / "step" / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-5)


def test_ctrl_c_saves_a_resumable_checkpoint_and_keeps_the_old_ones(tmp_path, capsys):
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(epochs=3), out, callbacks=[StopAt(21 + 5)])
    printed = " ".join(capsys.readouterr().out.split())
    assert f"cnnlab train --resume {out}" in printed and "last completed step" in printed
    _, state = load_checkpoint(out, "last")
    assert (state["epoch"], state["batch"], state["step"]) == (1, 5, 26)
    assert state["partial_epoch"]["images"] == 5 * 64
    # "best" (epoch 1) is untouched by the interruption.
    assert load_checkpoint(out, "best")[1]["step"] == 21
    assert (out / "metrics.csv").exists() and not (out / "report.json").exists()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers can only be installed from the main thread")
def test_real_sigint_stops_after_the_step(tmp_path):
    class SendSigint(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 3:
                signal.raise_signal(signal.SIGINT)

    # A background job (CI) may start with SIGINT ignored; the test needs Python's default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tiny(), tmp_path, quiet=True, callbacks=[SendSigint()])
        assert load_checkpoint(tmp_path, "last")[1]["step"] == 3
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, previous)


def test_resume_refuses_a_changed_config(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), tmp_path, quiet=True, callbacks=[StopAt(3)])
    with pytest.raises(CnnlabError, match="would change: lr"):
        Trainer.resume(tmp_path, overrides={"lr": 0.5})
    assert main(["train", "--resume", str(tmp_path), "--epochs", "5"]) == 2
    assert "would change: epochs" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--resume", str(tmp_path), "--device", "cpu", "--quiet"]) == 0


# ---------------------------------------------------------------------- BN and evaluation


def test_top_k_correct_breaks_ties_by_class_index_as_argmax_does():
    from cnnlab.eval import top_k_correct

    # bf16 logits tie often; a tie is ranked by class index, lowest first, whatever the batch.
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0],    # classes 1 and 2 tie for first
                           [2.0, 2.0, 2.0, 2.0],    # all tie
                           [0.0, 1.0, 5.0, 5.0],
                           [float("nan"), 0.0, 0.0, 0.0]])
    labels = torch.tensor([1, 3, 3, 0])
    assert int(top_k_correct(logits, labels, 1)) == int((logits.argmax(1) == labels)[:3].sum()) == 1
    assert [int(top_k_correct(logits[i:i + 1], labels[i:i + 1], 2)) for i in range(4)] == [1, 0, 1, 0]
    assert int(top_k_correct(logits, labels, 4)) == 3  # everything but the NaN score
    assert int(top_k_correct(logits, labels, 5)) == 3  # k beyond the classes: all of them
    for batch in (1, 2, 4):  # the same count whatever the batch size
        assert sum(int(top_k_correct(logits[i:i + batch], labels[i:i + batch], 1)) for i in range(0, 4, batch)) == 1

    # argmax takes NaN for the largest score: a NaN competitor ranks ahead of the true class.
    nan_rival = torch.tensor([[5.0, float("nan"), 1.0], [5.0, 1.0, float("nan")]])
    rival_labels = torch.tensor([0, 0])
    assert int(top_k_correct(nan_rival, rival_labels, 1)) == int((nan_rival.argmax(1) == rival_labels).sum()) == 0
    assert int(top_k_correct(nan_rival, rival_labels, 2)) == 2


def test_bn_evaluation_is_independent_of_the_batch(tmp_path):
    modes = []

    class RecordMode(Callback):
        def on_step_end(self, trainer):
            modes.append(trainer.model.training)

    config = tiny(model="resnet20", model_args={"widths": [4, 8, 16]}, epochs=1, augment="crop(pad=2)",
                  label_smoothing=0.0, warmup_epochs=0)
    trainer = Trainer(config, tmp_path, quiet=True, callbacks=[RecordMode()])
    trainer.fit()
    assert modes and all(modes)  # BN normalises with batch statistics while training
    model = trainer.model
    bn = model.bn1
    assert bn.num_batches_tracked.item() == trainer.steps_per_epoch
    assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))

    def batches(size):
        return InMemoryLoader.from_dataset(trainer.val_set, size, shuffle=False, mean=trainer.config.mean,
                                           std=trainer.config.std)

    # In fp32, and in the run's own precision (bf16 autocast on a CPU with native bf16, where
    # the trainer's validation figure was computed).
    for precision in (None, trainer.precision):
        one = evaluate(model, batches(1), precision=precision)
        many = evaluate(model, batches(64), precision=precision)
        assert one["top1"] == many["top1"]
        assert one["loss"] == pytest.approx(many["loss"], rel=1e-5 if precision is None else 1e-3)
    assert many["top1"] == trainer.history[-1]["val_top1"]
    logits_one, logits_many = predict_logits(model, batches(1)), predict_logits(model, batches(64))
    assert torch.allclose(logits_one, logits_many, atol=1e-5)
    assert torch.equal(logits_one.argmax(1), logits_many.argmax(1))
    assert model.training  # evaluation restores the mode


def test_streamed_image_folder_without_test_split(tmp_path):
    root = make_tree(tmp_path / "tree", per_class=12, splits=("train", "val"))
    report = train(tiny(data=str(root), in_memory=False, num_workers=0, image_size=32, epochs=1, batch_size=8,
                        augment="flip, crop(pad=2), mixup(0.4)"), tmp_path / "run", quiet=True)
    assert report["data"]["train_images"] == 36 and report["data"]["val_images"] == 36
    assert report["test_split"].startswith("val") and report["test_top5"] is None  # 3 classes: no top-5
    assert len(report["config"]["mean"]) == 3


def test_a_run_without_validation_split_reports_no_best_val(tmp_path, capsys):
    report = Trainer(tiny(epochs=1, val_fraction=0.0), tmp_path / "run", quiet=True).fit()
    printed = capsys.readouterr().out
    assert report["test_top1"] > 0
    assert "test: top-1" in printed and "best val" not in printed


def test_a_model_with_data_dependent_init_is_set_from_the_training_images(tmp_path, monkeypatch):
    from cnnlab.data import init_sample

    root = make_tree(tmp_path / "tree", per_class=12, splits=("train", "test"), size=(32, 32))
    config = tiny(data=str(root), model="airbench94", model_args={"widths": [8, 16, 16]}, epochs=1, batch_size=12,
                  augment="flip", label_smoothing=0.0, warmup_epochs=0, val_fraction=0.0)
    trainer = Trainer(config, tmp_path / "run", quiet=True)
    sample = init_sample(trainer.train_set, trainer.config.mean, trainer.config.std)
    assert sample.shape == (36, 3, 32, 32)  # all 36: under the pixel budget
    assert set(trainer.train_set.labels[torch.linspace(0, 35, 36).round().long()].tolist()) == {0, 1, 2}
    expected = create_model("airbench94", widths=[8, 16, 16], num_classes=3)
    expected.init_from_data(sample)
    whitening = trainer.model.whiten.conv.weight
    assert torch.equal(whitening, expected.whiten.conv.weight)
    trainer.fit()
    assert torch.equal(trainer.model.whiten.conv.weight, whitening)  # fixed: training leaves it alone
    from cnnlab.models.airbench import AirbenchNet

    def must_not_run(self, images):
        raise AssertionError("a resumed run has its weights already")

    monkeypatch.setattr(AirbenchNet, "init_from_data", must_not_run)
    resumed = Trainer.resume(tmp_path / "run", quiet=True)
    assert torch.equal(resumed.model.whiten.conv.weight, whitening)
    assert torch.equal(resumed.model.whiten.conv.bias, trainer.model.whiten.conv.bias)


class RecordWhiteningBias(Callback):
    """Notes, after each step, whether the whitening bias trained in it (a gradient) or not."""

    def __init__(self):
        self.trained = []

    def on_step_end(self, trainer):
        self.trained.append((trainer.epoch, trainer.model.whiten.conv.bias.grad is not None))


def test_the_whitening_bias_freezes_after_whiten_bias_epochs(tmp_path):
    """airbench94's progressive freezing: the whitening bias trains in the first epoch only, then
    stays put; backpropagation then stops at the first block (no gradient reaches the stem)."""
    root = make_tree(tmp_path / "tree", per_class=12, splits=("train", "test"), size=(32, 32))
    config = tiny(data=str(root), model="airbench94", model_args={"widths": [8, 16, 16]}, epochs=3, batch_size=12,
                  augment="flip", label_smoothing=0.0, warmup_epochs=0, val_fraction=0.0, whiten_bias_epochs=1)
    record = RecordWhiteningBias()
    trainer = Trainer(config, tmp_path / "run", quiet=True, callbacks=[record])
    biases = []
    trainer.callbacks.append(type("Keep", (Callback,), {"on_epoch_end": lambda self, t, row: biases.append(
        t.model.whiten.conv.bias.detach().clone())})())
    trainer.fit()
    assert record.trained == [(0, True)] * 3 + [(1, False)] * 3 + [(2, False)] * 3
    assert not torch.equal(biases[0], torch.zeros_like(biases[0]))  # it trained in epoch 1...
    assert torch.equal(biases[1], biases[0]) and torch.equal(biases[2], biases[0])  # ...and then stayed
    resumed = Trainer.resume(tmp_path / "run", quiet=True)
    assert torch.equal(resumed.model.whiten.conv.bias, biases[0])
    with pytest.raises(CnnlabError, match="whiten_bias_epochs needs a model with a patch-whitening layer"):
        Trainer(tiny(whiten_bias_epochs=1, epochs=1), tmp_path / "lenet", quiet=True).fit()
    with pytest.raises(CnnlabError, match="whiten_bias_epochs must be a number of epochs"):
        check_config(tiny(whiten_bias_epochs=-1))


def test_flip_test_time_augmentation_averages_image_and_mirror(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    images, labels = torch.randn(16, 3, 8, 8), torch.arange(16) % 10
    plain = evaluate(model, [(images, labels)])
    flipped = evaluate(model, [(images, labels)], tta="flip")
    with torch.no_grad():
        probs = (model(images).softmax(1) + model(images.flip(-1)).softmax(1)) / 2
    assert flipped["loss"] == pytest.approx(float(nn.functional.nll_loss(probs.log(), labels)), rel=1e-5)
    assert flipped["top1"] == pytest.approx(100.0 * float((probs.argmax(1) == labels).float().mean()))
    assert flipped["loss"] != pytest.approx(plain["loss"])
    with pytest.raises(CnnlabError, match="unknown TTA mode 'mirror'"):
        evaluate(model, [(images, labels)], tta="mirror")
    with pytest.raises(CnnlabError, match="unknown tta"):
        tiny(tta="mirror").validate()
    report = train(tiny(epochs=1, tta="flip"), tmp_path / "run", quiet=True)
    assert report["test_tta"] == "flip"


def test_init_sample_is_spread_over_the_split_and_bounded_in_pixels():
    from cnnlab.data.datasets import ArrayDataset
    from cnnlab.data import init_sample

    images = torch.arange(100, dtype=torch.uint8).view(-1, 1, 1, 1).expand(100, 3, 8, 8).contiguous()
    dataset = ArrayDataset(images, torch.arange(100) % 10, [str(c) for c in range(10)], "numbers", "memory")
    sample = init_sample(dataset, [0.0] * 3, [1 / 255] * 3, pixels=10 * 8 * 8)
    assert sample.shape == (10, 3, 8, 8)
    assert sample[:, 0, 0, 0].round().tolist() == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert init_sample(dataset, [0.0] * 3, [1.0] * 3, pixels=1).shape[0] == 1
