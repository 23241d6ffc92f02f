"""A .pt/.pth file from a user is read as tensors only: code in it never runs,
and every way it can be wrong is one line that names the file."""

import os
import pickle

import pytest
import torch

from cli_failure import Payload
from lorakit import runs
from lorakit.errors import DataError, TrainingError
from lorakit.torch_files import load_tensors



class Thing:
    pass


def test_plain_tensors_load(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "good.pt")
    assert torch.equal(load_tensors(tmp_path / "good.pt")["model"]["w"], torch.ones(2))


@pytest.mark.parametrize("save", [torch.save, lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=2))],
                         ids=["torch.save", "pickle"])
def test_code_in_a_file_is_named_and_never_run(tmp_path, save):
    marker = tmp_path / "code-ran"
    save({"model": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="holds code or Python objects .*system.* will not load") as error:
        load_tensors(tmp_path / "evil.pt")
    assert "evil.pt" in str(error.value) and "state_dict" in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (lambda path: torch.save({"model": Thing()}, path), "holds code or Python objects .*Thing"),
    (lambda path: path.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4)), "not a PyTorch file of plain tensors"),
    (lambda path: path.write_bytes(b""), "not a PyTorch file"),
    (lambda path: path.write_text("hello\n"), "not a PyTorch file"),
    (lambda path: path.write_bytes(os.urandom(64)), "not a PyTorch file"),
    (lambda path: (torch.save({"w": torch.ones(9)}, path), path.write_bytes(path.read_bytes()[:100])),
     "not a PyTorch file"),
], ids=["object", "other pickle", "empty", "text", "random", "truncated"])
def test_files_that_are_not_plain_tensors_are_one_line(tmp_path, content, message):
    content(tmp_path / "w.pt")
    with pytest.raises(DataError, match=message) as error:
        load_tensors(tmp_path / "w.pt")
    assert str(tmp_path / "w.pt") in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_and_the_error_class(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        load_tensors(tmp_path / "nothing.pt", TrainingError)


def test_resume_refuses_a_checkpoint_with_code(toy_host, toy_data, tmp_path):
    flags = ["--data", str(toy_data), "--output", str(tmp_path / "run"), "--epochs", "2"]
    runs.run(runs.load_config("toy", flags), stop_after=2, show_progress=False)
    marker = tmp_path / "code-ran"
    torch.save({"optimizers": Payload(marker)}, tmp_path / "run" / "checkpoints" / "last" / "trainer_state.pt")
    with pytest.raises(TrainingError, match="trainer_state.pt holds code or Python objects"):
        runs.run(runs.load_config("toy", flags), resume=True, show_progress=False)
    assert not marker.exists()
