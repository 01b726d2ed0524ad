"""The command line as a user runs it: output, JSON, and errors without tracebacks."""
import json
import os
import subprocess
import sys

import pytest

from cnnlab.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=300)


def test_models_table_and_json(capsys):
    assert main(["models", "vgg1?"]) == 0
    out = capsys.readouterr().out
    assert "vgg16" in out and "138.36M" in out and "15.47G" in out and "vgg16_bn" not in out
    assert main(["models", "resnet*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    resnet50 = next(r for r in rows if r["name"] == "resnet50")
    assert resnet50["params"] == 25_557_032 and 4.0e9 < resnet50["macs"] < 4.2e9
    assert {"year", "weight_layers", "reference_top1", "reference_source"} <= set(resnet50)


def test_summary_table_and_json(capsys):
    assert main(["summary", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "1,728" in out and "3,211,264" in out and "102,760,448" in out and "138,357,544" in out
    assert "in-place" in out.lower() or "in place" in out.lower()
    assert main(["summary", "lenet5", "--input", "1x32x32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [1, 32, 32] and data["total_params"] == 61_706


@pytest.mark.parametrize("args,message", [
    (["summary", "vgg61"], "unknown model 'vgg61'"),
    (["summary", "vgg16", "--input", "3x16x16"], "too small"),
    (["summary", "vgg16", "--input", "big"], "--input must look like"),
    (["models", "nothing*"], "no model matches"),
])
def test_user_errors_exit_2_without_traceback(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_claims_command(capsys):
    assert main(["claims", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results and all(r["verdict"] in ("agrees", "differs") for r in results)
    assert main(["claims"]) == 0
    assert "differ" in capsys.readouterr().out


def test_console_script_and_version():
    result = run("--version")
    assert result.returncode == 0 and "cnnlab" in result.stdout


@pytest.mark.parametrize("args", [["models"], ["models", "--json"], ["summary", "lenet5"], ["recipes"]])
def test_output_into_a_closed_pipe_ends_quietly_with_status_0(args):
    """`cnnlab models | head -1`: the reader closed the pipe, which is not an error. The read end
    is closed before the command starts, so its first write meets the closed pipe every time."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "cnnlab", *args], stdout=write_end, stderr=subprocess.PIPE,
                              timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
