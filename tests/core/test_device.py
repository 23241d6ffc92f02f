import pytest
import torch

from lorakit import runs
from lorakit.device import mixed_precision
from lorakit.errors import ConfigError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cpu_falls_back_to_full_precision():
    assert mixed_precision("auto") == "no"
    with pytest.raises(ConfigError, match="fp16"):
        mixed_precision("fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_the_device_line_names_full_precision_as_fp32():
    from lorakit.device import describe, make_accelerator

    assert describe(make_accelerator()) == "cpu, fp32, 1 process"


@pytest.mark.gpu
@cuda
def test_cuda_trains_with_bf16_autocast(toy_host, toy_data, tmp_path):
    assert mixed_precision("auto") == "bf16"
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "gpu"), "--epochs", "10", "--lr", "0.02"])
    outcome = runs.run(config, show_progress=False)
    assert outcome.report["test"]["adapter"]["mse"] < 0.2 * outcome.report["test"]["base"]["mse"]
