"""The explorer's JSON API: every endpoint against the library's own numbers, and the bad inputs."""
from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the explorer's tests need the explore extra (fastapi, uvicorn)")

from cnnlab.analysis.summary import summarize
from cnnlab.data import load_dataset, parse_augment
from cnnlab.data.augment import AUGMENTATION_NAMES
from cnnlab.runs import load_checkpoint

from .conftest import MODELS


def _decode(uri: str) -> torch.Tensor:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    pixels = torch.from_numpy(np.array(image))
    return pixels[None] if image.mode == "L" else pixels.permute(2, 0, 1)


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert "detail" in body and "Traceback" not in response.text
    return body["detail"] if isinstance(body["detail"], str) else " ".join(d["msg"] for d in body["detail"])


# ------------------------------------------------------------------ architectures

def test_models_are_the_zoo_with_its_pareto_frontiers(client):
    rows = client.get("/api/models").json()["models"]
    names = [row["name"] for row in rows]
    assert sorted(names) == sorted(MODELS.split(","))
    resnet20 = next(row for row in rows if row["name"] == "resnet20")
    summary = summarize("resnet20")
    assert (resnet20["params"], resnet20["macs"]) == (summary.total_params, summary.total_macs)
    assert resnet20["weight_layers"] == 20 and resnet20["year"] == 2016 and resnet20["reference_top1"] == 91.25
    for cost in ("macs", "params"):  # the frontier by brute force: nothing at most as costly is more accurate
        for row in rows:
            if row["reference_top1"] is None:
                assert not row[f"pareto_{cost}"]
                continue
            dominated = any(o is not row and o["dataset"] == row["dataset"] and o["reference_top1"] is not None
                            and o[cost] <= row[cost] and o["reference_top1"] >= row["reference_top1"]
                            and (o[cost], -o["reference_top1"]) < (row[cost], -row["reference_top1"]) for o in rows)
            assert row[f"pareto_{cost}"] == (not dominated), (cost, row["name"])


def test_a_model_that_cannot_be_traced_is_left_out_with_its_reason(client, monkeypatch):
    import cnnlab.explore.architectures as architectures
    from cnnlab.errors import CnnlabError

    real = architectures.zoo_table

    def broken(pattern=None, **kwargs):  # a model under construction whose forward fails
        if pattern is None or "vgg11" in pattern or pattern == "vgg*":
            raise CnnlabError("vgg11 cannot run on input (3, 224, 224): at layer 'features.0'")
        return real(pattern, **kwargs)

    monkeypatch.setattr(architectures, "zoo_table", broken)
    client.app.state.zoo._rows = None
    data = client.get("/api/models").json()
    assert "vgg11" not in [row["name"] for row in data["models"]] and len(data["models"]) == 5
    assert "features.0" in data["skipped"]["vgg11"]
    assert "cannot be traced" in _error(client.get("/api/models/vgg11"), 400)


def test_model_detail_draws_the_real_stages(client):
    detail = client.get("/api/models/resnet20").json()
    assert detail["info"]["paper"]["year"] == 2016
    stages = {stage["name"]: stage for stage in detail["diagram"]}
    for index, (channels, size) in enumerate(((16, 32), (32, 16), (64, 8)), start=1):
        unit, = stages[f"layer{index}"]["units"]
        assert (unit["type"], unit["count"], unit["channels"], unit["size"]) == ("BasicBlock", 3, channels, [size, size])
    total = sum(stage["params"] for stage in detail["diagram"])
    assert total == summarize("resnet20").total_params
    vgg = client.get("/api/models/vgg11").json()["diagram"]
    convs = [u for stage in vgg for u in stage["units"] if u["type"] == "Conv2d"]
    assert sum(u["count"] for u in convs) == 8 and [u["channels"] for u in convs][:2] == [64, 128]


def test_summary_is_cnnlab_summary(client):
    assert client.get("/api/models/resnet20/summary").json() == summarize("resnet20").to_dict()
    bigger = client.get("/api/models/resnet20/summary", params={"input": "3x64x64"}).json()
    assert bigger == summarize("resnet20", (3, 64, 64)).to_dict()


def test_bad_model_requests_are_4xx_with_a_message(client):
    assert "resnet20" in _error(client.get("/api/models/resnet2"), 404)  # did you mean
    assert "--models" in _error(client.get("/api/models/resnet18"), 400)  # registered, not shown
    _error(client.get("/api/models/res net"), 422)
    _error(client.get("/api/models/resnet20/summary", params={"input": "big"}), 422)
    assert "1-1024" in _error(client.get("/api/models/resnet20/summary", params={"input": "3x2000x2"}), 422)
    _error(client.get("/api/models/resnet20/summary", params={"input": "3x99999x2"}), 422)
    assert "too small" in _error(client.get("/api/models/vgg11/summary", params={"input": "3x8x8"}), 400)


# ------------------------------------------------------------------ augmentation

def test_augment_options_cover_every_augmentation(client):
    options = client.get("/api/augment/options").json()
    assert options["default"] == "digits" and [s["name"] for s in options["sources"]] == ["digits"]
    controls = options["sources"][0]["controls"]
    assert {c["name"] for c in controls} == set(AUGMENTATION_NAMES)
    for control in controls:  # the defaults fill in a spec the library accepts
        values = {p["name"]: p["default"] for p in control["params"]}
        parse_augment(control["spec"].format(**values), num_classes=10)


def test_augment_is_the_library_pipeline_with_its_seed(client):
    params = {"spec": "crop(pad=2, mode=zero)", "source": "digits", "count": 5, "image_seed": 3, "seed": 11}
    first = client.get("/api/augment", params=params).json()
    assert first == client.get("/api/augment", params=params).json()  # a seed repeats the draw
    digits = load_dataset("digits", "test", val_fraction=0)
    indices = [item["index"] for item in first["images"]]
    originals = digits.images[indices]
    expected = parse_augment("crop(pad=2)").augment_images(originals, torch.Generator().manual_seed(11))
    for item, original, augmented in zip(first["images"], originals, expected):
        assert torch.equal(_decode(item["original"]), original)
        assert torch.equal(_decode(item["train"]), augmented)
        assert torch.equal(_decode(item["test"]), original)  # crop with padding: identity at test time
        assert item["label"] == digits.classes[int(digits.labels[item["index"]])]
    other = client.get("/api/augment", params={**params, "seed": 12}).json()
    assert [i["train"] for i in other["images"]] != [i["train"] for i in first["images"]]
    fresh = client.get("/api/augment", params={"spec": "flip(p=1)", "count": 2}).json()
    assert 0 <= fresh["seed"] < 2**31 and fresh["source"] == "digits"


def test_augment_shows_resizing_test_views_and_soft_targets(client):
    rrc = client.get("/api/augment", params={"spec": "random_resized_crop(6, min_scale=0.3)", "count": 2,
                                             "seed": 1}).json()
    assert rrc["images"][0]["train_shape"] == [1, 6, 6] and rrc["images"][0]["test_shape"] == [1, 6, 6]
    assert rrc["changed_pixels"] is None
    mix = client.get("/api/augment", params={"spec": "mixup(1.0)", "count": 4, "seed": 2}).json()
    assert all(" + " in item["target"] or item["target"].startswith("1.00") for item in mix["images"])


def test_a_folder_given_with_data_is_an_image_source(explore_home, hidden_cifar, tmp_path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from cnnlab.explore.app import create_app

    for label, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i, size in enumerate(((90, 60), (50, 80), (64, 64))):  # sizes differ: brought to 64x64
            Image.new("RGB", size, colour).save(tmp_path / "photos" / label / f"{i}.png")
    with TestClient(create_app(runs=explore_home["runs"], data=tmp_path / "photos", models="resnet20")) as client:
        options = client.get("/api/augment/options").json()
        assert [s["name"] for s in options["sources"]] == ["folder", "digits"] and options["default"] == "folder"
        data = client.get("/api/augment", params={"spec": "crop(pad=8)", "count": 6, "seed": 0}).json()
        assert data["source"] == "folder" and len(data["images"]) == 6
        assert {item["label"] for item in data["images"]} == {"cats", "dogs"}
        assert all(_decode(item["original"]).shape == (3, 64, 64) for item in data["images"])


def test_bad_augment_requests_are_4xx_with_a_message(client):
    assert "unbalanced" in _error(client.get("/api/augment", params={"spec": "crop(pad=-1"}), 400)
    assert "non-negative" in _error(client.get("/api/augment", params={"spec": "crop(pad=-1)"}), 400)
    assert "flip" in _error(client.get("/api/augment", params={"spec": "flipp"}), 400)
    _error(client.get("/api/augment", params={"spec": "flip", "count": 0}), 422)
    _error(client.get("/api/augment", params={"spec": "flip", "count": 10000}), 422)
    _error(client.get("/api/augment", params={"spec": "flip", "source": "../../etc"}), 422)
    assert "cifar10" in _error(client.get("/api/augment", params={"spec": "flip", "source": "cifar10"}), 400)
    _error(client.get("/api/augment", params={"spec": "x" * 500}), 422)
    for spec in ("crop(pad=100000)", "random_resized_crop(2000)", "scale(8, 9000), crop(8)"):  # no huge images
        assert "up to 4x" in _error(client.get("/api/augment", params={"spec": spec}), 400), spec
    _error(client.get("/api/augment"), 422)


# ------------------------------------------------------------------ batch normalization

def test_batchnorm_runs_the_real_layer_in_both_modes(client):
    data = client.get("/api/batchnorm", params={"network": "resnet20", "layer": "layer2.0.bn1", "batch_size": 8,
                                                "gamma": 2.0, "beta": -1.0}).json()
    assert data["layer"] == "layer2.0.bn1" and data["shape"] == [8, 32, 16, 16] and "layer1.0.bn1" in data["layers"]
    # Training mode: every channel normalised by its batch statistics, then scaled by gamma and shifted by beta.
    assert data["train"]["mean"] == pytest.approx(-1.0, abs=1e-4)
    assert data["train"]["std"] == pytest.approx(2.0, rel=1e-3)
    assert data["channels"]["train_out_mean"] == pytest.approx([-1.0] * 32, abs=1e-4)
    # Evaluation mode of an initialised layer: running mean 0 and variance 1, so y = 2 x - 1.
    assert data["channels"]["running_mean"] == [0.0] * 32 and data["channels"]["running_var"] == [1.0] * 32
    assert data["eval"]["mean"] == pytest.approx(2 * data["raw"]["mean"] - 1, rel=1e-3, abs=1e-4)
    assert data["raw"]["mean"] == pytest.approx(sum(data["channels"]["batch_mean"]) / 32, abs=1e-4)
    assert sum(data["raw"]["counts"]) == 8 * 32 * 16 * 16
    assert data["batch_of_one"]["max_difference"] > 0
    alone = client.get("/api/batchnorm", params={"network": "resnet20", "layer": "layer2.0.bn1", "batch_size": 1,
                                                 "channel": 3}).json()
    assert alone["batch_of_one"]["max_difference"] == 0 and alone["channel"] == 3
    assert sum(alone["raw"]["counts"]) == 16 * 16


def test_batchnorm_of_a_trained_run_uses_its_running_statistics(client, explore_home):
    data = client.get("/api/batchnorm", params={"network": "run:trained", "layer": "bn1", "batch_size": 4}).json()
    weights, _ = load_checkpoint(explore_home["runs"] / "trained", "last")
    assert data["channels"]["running_mean"] == pytest.approx(weights["bn1.running_mean"].tolist(), abs=1e-6)
    assert data["gamma"] == pytest.approx(weights["bn1.weight"].tolist(), abs=1e-6)  # its own gamma
    assert data["source"]["kind"] == "trained" and data["source"]["upstream"] == "eval"
    synthetic = client.get("/api/batchnorm", params={"shift": 4.0, "scale": 2.0, "gamma": 1.0, "beta": 0.0}).json()
    assert synthetic["raw"]["mean"] == pytest.approx(4.0, abs=1.0)
    assert synthetic["train"]["mean"] == pytest.approx(0.0, abs=1e-4)
    names = [n["id"] for n in client.get("/api/batchnorm/networks").json()["networks"]]
    assert names[0] == "synthetic" and "resnet20" in names and "run:trained" in names and "resnet1202" not in names


def test_bad_batchnorm_requests_are_4xx_with_a_message(client):
    _error(client.get("/api/batchnorm", params={"batch_size": 0}), 422)
    _error(client.get("/api/batchnorm", params={"batch_size": 100000}), 422)
    _error(client.get("/api/batchnorm", params={"gamma": 100}), 422)
    _error(client.get("/api/batchnorm", params={"gamma": "nan"}), 422)
    assert "not offered" in _error(client.get("/api/batchnorm", params={"network": "resnet1202"}), 400)
    assert "no BN layer" in _error(client.get("/api/batchnorm", params={"network": "resnet20", "layer": "fc"}), 400)
    assert "channel 99" in _error(client.get("/api/batchnorm", params={"network": "resnet20", "channel": 99}), 400)
    _error(client.get("/api/batchnorm", params={"network": "run:../outside"}), 403)
    _error(client.get("/api/batchnorm", params={"network": "run:healthy"}), 400)  # a run without checkpoint


# ------------------------------------------------------------------ gradient flow

def _reference_gradients(depth: int, shortcut: bool, batch: int, size: int, seed: int) -> list[float]:
    """The weight gradients of one training step, computed here with the library's model alone."""
    from cnnlab.explore.images import to_network_input
    from cnnlab.models.resnet_cifar import CifarResNet

    digits = load_dataset("digits", "test", val_fraction=0)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))[:batch]
    x = to_network_input(digits.images[order], 3, size)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
    torch.manual_seed(seed)
    model = CifarResNet(depth, num_classes=10, shortcut=shortcut).train()
    torch.nn.functional.cross_entropy(model(x), digits.labels[order]).backward()
    return [float(p.grad.norm()) for p in model.parameters() if p.dim() >= 2]


@pytest.mark.parametrize("shortcut", [True, False])
def test_gradient_flow_is_a_real_backward_pass(client, shortcut):
    data = client.get("/api/gradient-flow", params={"depth": 20, "shortcut": shortcut, "batch_size": 4,
                                                    "image_size": 8, "seed": 3}).json()
    assert data["network"] == ("resnet20" if shortcut else "plain20") and len(data["layers"]) == 20
    norms = [layer["grad_norm"] for layer in data["layers"]]
    assert norms == pytest.approx(_reference_gradients(20, shortcut, 4, 8, 3), rel=1e-4)
    assert len(data["blocks"]) == 9
    for block in data["blocks"]:
        if shortcut:  # dL/dx = identity part + branch part; an identity shortcut passes dL/ds on unchanged
            assert block["identity_norm"] is not None and block["branch_norm"] is not None
            if block["name"] not in ("layer2.0", "layer3.0"):
                assert block["identity_norm"] == pytest.approx(block["sum_norm"], rel=1e-6)
        else:
            assert block["identity_norm"] is None
            assert block["branch_norm"] == pytest.approx(block["in_norm"], rel=1e-6)
        assert block["gain"] == pytest.approx(block["in_norm"] / block["out_norm"], rel=1e-6)
    assert data["first_over_last"] == pytest.approx(norms[0] / norms[-2], rel=1e-6)


def test_bad_gradient_flow_requests_are_422(client):
    assert "less than or equal" in _error(client.get("/api/gradient-flow", params={"depth": 10000}), 422)
    assert "6n+2" in _error(client.get("/api/gradient-flow", params={"depth": 21}), 422)
    _error(client.get("/api/gradient-flow", params={"batch_size": 0}), 422)
    _error(client.get("/api/gradient-flow", params={"batch_size": 4096}), 422)
    _error(client.get("/api/gradient-flow", params={"image_size": 4}), 422)
    _error(client.get("/api/gradient-flow", params={"shortcut": "maybe"}), 422)
    _error(client.get("/api/gradient-flow", params={"seed": -1}), 422)
    too_much = client.get("/api/gradient-flow", params={"depth": 110, "batch_size": 32, "image_size": 32})
    assert "lower one of them" in _error(too_much, 422)  # each within its limit, together too slow


# ------------------------------------------------------------------ runs

def test_runs_lists_the_run_folders_under_the_root(client):
    runs = client.get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["exploding", "group/overfit", "healthy", "trained"]  # not the link out
    healthy = next(r for r in runs if r["name"] == "healthy")
    assert (healthy["epochs"], healthy["test_top1"], healthy["finished"]) == (8, 83.0, True)
    assert next(r for r in runs if r["name"] == "trained")["checkpoints"] == ["last"]


def test_run_detail_has_curves_evaluation_and_findings(client, explore_home):
    from cnnlab.train.diagnose import diagnose_run

    healthy = client.get("/api/runs/healthy").json()
    assert [row["epoch"] for row in healthy["metrics"]] == list(range(1, 9))
    evaluation, = healthy["evaluations"]
    assert evaluation["confusion_matrix"][0][0] == 10 and "top_losses" not in evaluation
    overfit = client.get("/api/runs/group/overfit").json()
    _, findings = diagnose_run(explore_home["runs"] / "group" / "overfit")
    assert overfit["findings"] == [f.as_dict() for f in findings] and overfit["healthy"] is False
    assert "overfitting" in [f["name"] for f in overfit["findings"]]
    exploding = client.get("/api/runs/exploding").json()  # NaN losses travel as null, not as invalid JSON
    assert exploding["metrics"][2]["train_loss"] is None and exploding["findings"][0]["name"] == "exploding"


def test_run_paths_outside_the_root_are_refused(client):
    for name in ("..%2Foutside", "group/..%2F..%2Foutside", "link", "%2Fetc%2Fpasswd", "..%2F..%2F..%2Fetc"):
        assert "runs folder" in _error(client.get(f"/api/runs/{name}"), 403), name
    _error(client.get("/api/runs/nothing-here"), 404)
    _error(client.get("/api/runs/not-a-run"), 404)


# ------------------------------------------------------------------ the page and the documentation

def test_the_page_and_openapi_document_every_endpoint(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    text = page.text + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "http://" not in text.replace('"http://www.w3.org/2000/svg"', "") and "https://" not in text  # no CDN
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/models", "/api/models/{name}", "/api/models/{name}/summary", "/api/augment",
                 "/api/augment/options", "/api/batchnorm", "/api/batchnorm/networks", "/api/gradient-flow",
                 "/api/runs", "/api/runs/{name}"):
        assert path in paths, path
    assert client.get("/docs").status_code == 200


# ------------------------------------------------------------------ the command

def test_choose_port_takes_the_next_free_one():
    from cnnlab.errors import CnnlabError
    from cnnlab.explore.server import choose_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CnnlabError, match="in use"):
            choose_port("127.0.0.1", port)
    assert 8231 <= choose_port("127.0.0.1", None) < 8281


def test_cnnlab_explore_serves_the_page(explore_home, tmp_path):
    from cnnlab.cli import main

    assert main(["explore", "--data", str(tmp_path / "absent"), "--no-browser"]) == 2
    assert main(["explore", "--models", "nothing*", "--no-browser"]) == 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CNNLAB_DATA": str(explore_home["data"]), "CNNLAB_CACHE": str(explore_home["cache"])}
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", "explore", "--no-browser", "--port", str(port),
                                "--runs", str(explore_home["runs"]), "--models", "resnet20"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and process.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None and "cnnlab explorer" in page, process.stdout.read() if process.poll() else ""
        runs = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5).read().decode()
        assert "group/overfit" in runs
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"127.0.0.1:{port}" in output and "Traceback" not in output
