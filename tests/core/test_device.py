import pytest
import torch

from lorakit.device import mixed_precision
from lorakit.errors import ConfigError


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cpu_falls_back_to_full_precision():
    assert mixed_precision("auto") == "no"
    with pytest.raises(ConfigError, match="fp16"):
        mixed_precision("fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_the_device_line_names_full_precision_as_fp32():
    from lorakit.device import describe, make_accelerator

    assert describe(make_accelerator()) == "cpu, fp32, 1 process"
