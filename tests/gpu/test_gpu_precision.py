"""The default precision on CUDA: bf16 autocast in every training forward
where the GPU has native bf16. Skipped without a CUDA device."""

import pytest
import torch

from lorakit import runs
from lorakit.device import mixed_precision

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_cuda_trains_with_bf16_autocast(toy_host, toy_data, tmp_path, monkeypatch):
    import toy_plugin
    from accelerate.state import AcceleratorState

    assert mixed_precision("auto") == "bf16"
    trained_in, forward = set(), toy_plugin.ToyModel.forward

    def recording(self, x):
        y = forward(self, x)
        if self.training:
            trained_in.add((y.device.type, y.dtype))
        return y

    monkeypatch.setattr(toy_plugin.ToyModel, "forward", recording)
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "gpu"), "--epochs", "10",
                                      "--lr", "0.02"])
    AcceleratorState._reset_state(True)  # another test of this process may have set another precision
    try:
        outcome = runs.run(config, show_progress=False)
    finally:
        AcceleratorState._reset_state(True)
    assert trained_in == {("cuda", torch.bfloat16)}  # every training forward, in bf16 autocast on the GPU
    assert outcome.report["test"]["adapter"]["mse"] < 0.2 * outcome.report["test"]["base"]["mse"]
