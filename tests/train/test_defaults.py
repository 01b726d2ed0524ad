"""cnnlab train --data D without a recipe: defaults derived from the model and the data, with reasons."""
import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import load_recipe
from cnnlab.train.defaults import derive_config


@pytest.fixture
def photos(tmp_path):
    """Two classes of small 'photos', 90x70 and 80x60 JPEGs (larger than 64 px)."""
    rng = np.random.default_rng(0)
    for label in ("ants", "bees"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(6):
            height, width = (70, 90) if i % 2 else (60, 80)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / label / f"{i}.jpg")
    return tmp_path / "photos"


def test_photos_get_the_imagenet_protocol_at_the_models_input_size(photos):
    config, reasons = derive_config({"data": str(photos)})
    assert config.model == "resnet18" and config.recipe == "auto"
    assert config.image_size == 256 and config.augment == "random_resized_crop(224), flip"
    assert config.mean == pytest.approx([0.485, 0.456, 0.406])  # resnet18's declared (ImageNet) statistics
    assert config.lr == pytest.approx(0.1 * 64 / 256) and config.schedule == "cosine"
    text = " ".join(reasons)
    assert "sizes vary" in text and "random-resized 224x224" in text and "linear scaling rule" in text

    small_model, _ = derive_config({"data": str(photos), "model": "lenet5", "batch_size": 16})
    assert small_model.augment == "random_resized_crop(32), flip" and small_model.image_size == 37
    assert small_model.mean is None  # LeNet-5 declares no statistics: the data's own
    assert small_model.batch_size == 16 and small_model.lr == pytest.approx(0.1 * 16 / 256)


def test_small_images_get_cifar_style_defaults():
    config, reasons = derive_config({"data": "cifar10"})
    assert (config.model, config.augment, config.image_size, config.mean) == ("resnet20", "flip, crop(pad=4)", None,
                                                                              None)
    digits, reasons = derive_config({"data": "digits", "epochs": 3})
    assert digits.model == "lenet5" and digits.augment == "crop(pad=1)" and digits.epochs == 3
    assert any("no flips" in r for r in reasons) and any("epochs=3" in r for r in reasons)
    big_model, reasons = derive_config({"data": "cifar10", "model": "resnet18"})
    assert big_model.image_size is None and any("declares 224x224 input" in r for r in reasons)


def test_bad_data_or_model_is_one_clear_error(tmp_path):
    with pytest.raises(CnnlabError, match="no data set named"):
        derive_config({"data": str(tmp_path / "nowhere")})
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("no images here")
    with pytest.raises(CnnlabError, match="no readable images"):
        derive_config({"data": str(tmp_path / "empty")})
    with pytest.raises(CnnlabError, match="resnet2000"):
        derive_config({"data": "digits", "model": "resnet2000"})


def test_cli_prints_the_derived_choices_and_trains(photos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(photos), "--model", "lenet5", "--epochs", "1", "--batch-size", "8",
                 "--out", str(out), "--quiet", "--set", "val_fraction=0.25"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "no --recipe" in printed and "random-resized 32x32 crops" in printed
    assert (out / "report.json").is_file()


def test_epochs_move_a_step_schedules_milestones(capsys, tmp_path):
    config = load_recipe("resnet20-cifar10", epochs=10)
    assert config.milestones == [5.0, 7.473] and config.epochs == 10
    assert load_recipe("resnet20-cifar10", epochs=10, milestones=[3, 6]).milestones == [3, 6]
    assert load_recipe("resnet20-cifar10", epochs=182).milestones == [91, 136]
    # The command line says so (the run itself is stopped at once by an unknown data path).
    assert main(["train", "--recipe", "resnet20-cifar10", "--epochs", "10", "--data", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "run")]) == 2
    assert "[91.0, 136.0] of 182 epochs become [5.0, 7.473] of 10" in " ".join(capsys.readouterr().out.split())
