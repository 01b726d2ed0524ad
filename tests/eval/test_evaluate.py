"""`cnnlab eval` and `cnnlab predict` on a tiny LeNet-5 run trained on the bundled digits."""
import json

import numpy as np
import pytest

from cnnlab.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One epoch of the lenet5-digits recipe (a few seconds on a CPU), shared by the tests."""
    from cnnlab.train import Trainer, load_recipe

    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("cnnlab-home")
    mp.setenv("CNNLAB_CACHE", str(home / "cache"))
    mp.setenv("CNNLAB_DATA", str(home / "datasets"))
    out = tmp_path_factory.mktemp("run") / "lenet"
    config = load_recipe("lenet5-digits", {"epochs": 1, "device": "cpu"})
    Trainer(config, out, quiet=True).fit()
    yield out
    mp.undo()


def _json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_eval_matches_the_run_report(run_dir, tmp_path, capsys):
    result = _json(capsys, ["eval", str(run_dir), "--tag", "last", "--out", str(tmp_path), "--json"])
    report = json.loads((run_dir / "report.json").read_text())
    assert result["top1"] == pytest.approx(report["test_top1"], abs=1e-9)
    assert result["loss"] == pytest.approx(report["test_loss"], rel=1e-5)
    assert result["top5"] == pytest.approx(report["test_top5"], abs=1e-9)
    assert result["split"] == "test" and result["images"] == 360 and result["tag"] == "last"

    png, written = tmp_path / "confusion_test.png", tmp_path / "eval_test.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(written.read_text())["top1"] == result["top1"]

    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum(axis=1).tolist() == result["class_counts"]
    assert matrix.sum() == 360
    assert np.trace(matrix) / 360 * 100 == pytest.approx(result["top1"])
    for i, name in enumerate(result["classes"]):
        assert result["per_class_top1"][name] == pytest.approx(100 * matrix[i, i] / matrix[i].sum())


def test_top_losses_and_most_confused(run_dir, tmp_path, capsys):
    """fastai's plot_top_losses and most_confused: the confident mistakes, drawn, and the pairs mixed up most."""
    from cnnlab.eval import load_run
    from cnnlab.eval import evaluate_run

    result = _json(capsys, ["eval", str(run_dir), "--tag", "last", "--top-losses", "7", "--out", str(tmp_path),
                            "--json"])
    top = result["top_losses"]
    assert len(top) == 7 and [row["loss"] for row in top] == sorted((row["loss"] for row in top), reverse=True)
    assert len({row["index"] for row in top}) == 7
    for row in top:
        # The loss is the cross-entropy of the true class; a mistake is predicted with more than that.
        assert row["loss"] == pytest.approx(-np.log(row["true_probability"]), rel=1e-4)
        assert (row["true"] == row["predicted"]) == (row["probability"] == pytest.approx(row["true_probability"]))
    assert (tmp_path / "top_losses_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["files"]["top_losses"] == str(tmp_path / "top_losses_test.png")

    # The highest losses are the highest of all images, and add up with the rest to the mean loss.
    run = load_run(run_dir, "last", device="cpu")
    everything = evaluate_run(run, top_losses=360)
    assert [row["index"] for row in everything["top_losses"][:7]] == [row["index"] for row in top]
    assert np.mean([row["loss"] for row in everything["top_losses"]]) == pytest.approx(result["loss"], rel=1e-9)
    mistakes = sum(row["true"] != row["predicted"] for row in everything["top_losses"])
    assert mistakes == 360 - round(result["top1"] * 360 / 100)

    matrix = np.array(result["confusion_matrix"])
    np.fill_diagonal(matrix, 0)
    confused = result["most_confused"]
    assert [c["count"] for c in confused] == sorted(matrix.flatten()[matrix.flatten() > 0], reverse=True)[:10]
    names = result["classes"]
    assert all(matrix[names.index(c["true"]), names.index(c["predicted"])] == c["count"] for c in confused)

    assert main(["eval", str(run_dir), "--tag", "last", "--top-losses", "0", "--out", str(tmp_path / "none")]) == 0
    printed = capsys.readouterr().out
    assert "most confused" in printed and not (tmp_path / "none" / "top_losses_test.png").exists()
    assert main(["eval", str(run_dir), "--top-losses", "-1", "--out", str(tmp_path)]) == 2
    assert "top_losses must be 0 or more" in capsys.readouterr().err


def test_eval_defaults_to_best_and_writes_into_the_run(run_dir, capsys):
    assert main(["eval", str(run_dir / "best.safetensors"), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "best checkpoint" in out and "val" in out
    assert (run_dir / "eval_val.json").is_file() and (run_dir / "confusion_val.png").is_file()


def test_eval_on_the_training_split(run_dir, tmp_path, capsys):
    """--split train: the run's own training part (the held-out val images excluded), unaugmented."""
    from cnnlab.data import InMemoryLoader, load_dataset
    from cnnlab.eval import load_run
    from cnnlab.train import evaluate
    from cnnlab.device import resolve_precision

    result = _json(capsys, ["eval", str(run_dir), "--tag", "last", "--split", "train", "--out", str(tmp_path),
                            "--json"])
    assert result["split"] == "train" and result["images"] == 1293  # 1,437 digits less 144 held out
    assert (tmp_path / "eval_train.json").is_file() and (tmp_path / "confusion_train.png").is_file()

    run = load_run(run_dir, "last", device="cpu")
    train = load_dataset("digits", "train", val_fraction=run.config.val_fraction, seed=run.config.split_seed,
                         image_size=run.config.image_size)
    # The same batches in the run's precision (bf16 autocast on a CPU with native bf16), as the command.
    batch_size = run.config.evaluation_batch_size
    direct = evaluate(run.model, InMemoryLoader.from_dataset(train, batch_size, shuffle=False, mean=run.mean,
                                                             std=run.std),
                      precision=resolve_precision(run.device, run.config.precision, False))
    assert result["top1"] == pytest.approx(direct["top1"], abs=1e-9)


def test_eval_with_tta(run_dir, tmp_path, capsys):
    flip = _json(capsys, ["eval", str(run_dir), "--tta", "flip", "--out", str(tmp_path), "--json"])
    assert flip["tta"] == "flip" and 0 <= flip["top1"] <= 100
    assert (tmp_path / "eval_test_flip.json").is_file()
    crops = _json(capsys, ["eval", str(run_dir), "--tta", "10crop", "--out", str(tmp_path), "--json"])
    assert crops["tta_crop"] == {"crop_size": 32, "pad": 2, "pad_mode": "zero"}  # the recipe's crop(pad=2)
    assert main(["eval", str(run_dir), "--tta", "multiscale", "--out", str(tmp_path)]) == 2
    assert "at least 224x224" in capsys.readouterr().err.replace("\n", " ")


def test_predict(run_dir, tmp_path, capsys):
    from PIL import Image

    from cnnlab.data import load_dataset

    test = load_dataset("digits", "test", image_size=32)
    files = []
    for i in range(2):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).convert("RGB").save(path)  # RGB file, grey run: converted
        files.append(str(path))
    results = _json(capsys, ["predict", str(run_dir), *files, "--top-k", "3", "--json"])
    assert [r["file"] for r in results] == files
    for item in results:
        probabilities = [p["probability"] for p in item["predictions"]]
        assert len(probabilities) == 3
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert all(p["class"] in [str(d) for d in range(10)] for p in item["predictions"])
    assert main(["predict", str(run_dir), files[0]]) == 0
    assert "digit0.png" in capsys.readouterr().out


def test_predict_goes_in_evaluation_batches_with_the_same_answers(run_dir, tmp_path):
    import dataclasses

    from PIL import Image

    from cnnlab.data import load_dataset
    from cnnlab.eval import load_run
    from cnnlab.eval import predict_images

    test = load_dataset("digits", "test", image_size=32)
    files = []
    for i in range(5):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(path)
        files.append(path)
    run = load_run(run_dir, "last", device="cpu")
    sizes = []
    run.model.register_forward_pre_hook(lambda module, args: sizes.append(args[0].shape[0]))
    at_once = predict_images(run, files, top_k=3)
    assert sizes == [5]
    run.config = dataclasses.replace(run.config, eval_batch_size=2)
    in_batches = predict_images(run, files, top_k=3)
    assert sizes == [5, 2, 2, 1]
    predict_images(run, files, top_k=3, batch_size=3)
    assert sizes == [5, 2, 2, 1, 3, 2]
    assert [r["file"] for r in in_batches] == [str(f) for f in files]
    for a, b in zip(at_once, in_batches):
        assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
        assert [p["probability"] for p in a["predictions"]] == pytest.approx([p["probability"] for p in b["predictions"]],
                                                                              rel=1e-5)


def test_errors_exit_2(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    cases = [
        (["predict", str(run_dir), str(bad)], "bad.png"),
        (["predict", str(run_dir), str(tmp_path / "missing.png")], "missing.png"),
        (["eval", str(tmp_path / "nope")], "does not exist"),
        (["eval", str(tmp_path)], "not a run directory"),
        (["eval", str(run_dir), "--tag", "epoch7"], "no checkpoint"),
        (["eval", str(run_dir / "last.safetensors"), "--tag", "best"], "contradicts"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.replace("\n", "")
        assert message in err and "Traceback" not in err


def test_eval_refuses_other_classes(run_dir, tmp_path, capsys):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = tmp_path / "pets" / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((32, 32), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    assert main(["eval", str(run_dir), "--data", str(tmp_path / "pets")]) == 2
    assert "differ from the run's" in capsys.readouterr().err.replace("\n", "")


def test_a_run_records_its_image_size_and_channels_for_predict(tmp_path, monkeypatch):
    """A folder of 12x12 RGB images trained without image_size: the run's state says 3 channels
    at 12x12, so predict resizes a 30x20 photo to the size the model was trained at."""
    from PIL import Image

    from cnnlab.eval import load_run, predict_images
    from cnnlab.runs import load_checkpoint
    from cnnlab.train import load_recipe, train

    from ..data.helpers import make_tree

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    root = make_tree(tmp_path / "shapes", per_class=6, splits=("train", "test"), size=(12, 12))
    config = load_recipe("lenet5-digits", data=str(root), image_size=None, model="resnet20", epochs=1, batch_size=8,
                         augment="flip", device="cpu", val_fraction=0)
    train(config, tmp_path / "run", quiet=True)
    state = load_checkpoint(tmp_path / "run", "last")[1]
    assert state["data"]["image_size"] == [12, 12] and state["data"]["in_chans"] == 3

    run = load_run(tmp_path / "run", device="cpu")
    assert run.image_size == (12, 12)
    sizes = []
    run.model.register_forward_pre_hook(lambda module, args: sizes.append(tuple(args[0].shape[-2:])))
    photo = tmp_path / "photo.png"
    Image.new("RGB", (30, 20), (200, 30, 30)).save(photo)
    (result,) = predict_images(run, [photo], top_k=2)
    assert sizes == [(12, 12)] and len(result["predictions"]) == 2
