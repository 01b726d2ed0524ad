"""Atomic writes: the old file survives any failure while writing, and no temporary is left behind."""
import os
import stat

import pytest

from cnnlab.atomic import atomic_write, atomic_write_all, atomic_write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_text_is_written_and_replaces_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    assert atomic_write_text(target, "new ünïcode\n") == target
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "last.safetensors"
    target.write_bytes(b"the last good checkpoint")

    def write(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"half a chec")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(target, write, sync=True)
    assert target.read_bytes() == b"the last good checkpoint"
    assert _leftovers(tmp_path) == []


def test_a_set_of_files_is_replaced_only_when_every_file_was_written(tmp_path):
    weights, state = tmp_path / "last.safetensors", tmp_path / "last.state.pt"
    weights.write_text("old weights")
    state.write_text("old state")

    def write_weights(temporary):
        with open(temporary, "w") as handle:
            handle.write("new weights")

    def fail(temporary):
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        atomic_write_all([(weights, write_weights), (state, fail)])
    assert (weights.read_text(), state.read_text()) == ("old weights", "old state")
    assert _leftovers(tmp_path) == []

    def write_state(temporary):
        with open(temporary, "w") as handle:
            handle.write("new state")

    assert atomic_write_all([(weights, write_weights), (state, write_state)]) == [weights, state]
    assert (weights.read_text(), state.read_text()) == ("new weights", "new state")
    assert _leftovers(tmp_path) == []


def test_the_writer_gets_a_hidden_temporary_beside_the_target(tmp_path):
    seen = []

    def write(temporary):
        seen.append(temporary)
        with open(temporary, "w") as handle:
            handle.write("x")

    atomic_write(tmp_path / "curves.png", write)
    (temporary,) = seen
    assert isinstance(temporary, str)
    assert os.path.dirname(temporary) == str(tmp_path)
    assert os.path.basename(temporary).startswith(".curves.png.")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_files_get_the_usual_permissions_not_private_ones(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "metrics.csv", "epoch\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
