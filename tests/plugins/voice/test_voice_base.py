"""Loading bases: the demo, a checkpoint folder, weights_only only, clear
errors, and a deterministic fingerprint (no random discriminator at load)."""

import pytest
import torch

from lorakit.api import BaseModelError, fingerprint
from lorakit_voice.base import DEMO_BASE, load_vits, save_checkpoint
from lorakit_voice.task import VoiceCloneTask


def test_demo_base_loads_without_discriminator_and_fingerprints_the_same():
    first, second = VoiceCloneTask().load_base("demo"), VoiceCloneTask().load_base("demo")
    assert getattr(first.model, "disc", None) is None and first.extras["discriminator"] is None
    assert fingerprint(first.model) == fingerprint(second.model)
    assert first.model.config.audio.sample_rate == 16000 and not first.model.training


def test_a_saved_checkpoint_folder_loads_back_identically(tmp_path, demo_base):
    save_checkpoint(demo_base.model, tmp_path / "copy")
    loaded = load_vits(str(tmp_path / "copy"))
    assert fingerprint(loaded.model) == fingerprint(demo_base.model)


def test_checkpoint_discriminator_weights_are_handed_back_separately(tmp_path, demo_base):
    from TTS.tts.layers.vits.discriminator import VitsDiscriminator

    save_checkpoint(demo_base.model, tmp_path / "with-disc")
    state = torch.load(tmp_path / "with-disc" / "model.pth", weights_only=True)
    disc = VitsDiscriminator(periods=demo_base.model.args.periods_multi_period_discriminator)
    state["model"].update({f"disc.{k}": v for k, v in disc.state_dict().items()})
    torch.save(state, tmp_path / "with-disc" / "model.pth")
    loaded = load_vits(str(tmp_path / "with-disc"))
    assert set(loaded.discriminator) == set(disc.state_dict())
    assert fingerprint(loaded.model) == fingerprint(demo_base.model)


class Sneaky:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_checkpoint_with_pickled_objects_is_refused(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((DEMO_BASE / "config.json").read_text())
    torch.save({"model": {}, "extra": Sneaky()}, folder / "model.pth")
    with pytest.raises(BaseModelError, match="holds code or Python objects .*print.* that lorakit will not load"):
        load_vits(str(folder))


@pytest.mark.parametrize("name, message", [
    ("no/such/folder", "no such folder or coqui model name"),
    ("tts_models/xx/nothing/vits", "cannot fetch the coqui model"),
])
def test_unknown_bases_name_the_options(name, message):
    with pytest.raises(BaseModelError, match=message) as error:
        load_vits(name)
    assert "--base demo" in str(error.value)


def test_a_failed_fetch_is_one_message_without_coqui_s_logged_tracebacks(monkeypatch, caplog):
    import logging

    from TTS.utils.manage import ModelManager

    def offline(self, name):  # as coqui fails offline: each try logged with its traceback, then raised
        try:
            raise ConnectionError("github.com: Name or service not known")
        except ConnectionError:
            logging.getLogger("TTS.utils.manage").exception("Failed to download the model file to %s", "/x")
            raise

    monkeypatch.setattr(ModelManager, "download_model", offline)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BaseModelError, match=r"cannot fetch the coqui model 'tts_models/en/vctk/vits' "
                                                 r"\(ConnectionError: github.com"):
            load_vits("tts_models/en/vctk/vits")
    assert not [r for r in caplog.records if r.name.startswith("TTS")]
    assert logging.getLogger("TTS").level == logging.NOTSET  # coqui's logging as it was


def test_a_folder_without_checkpoint_names_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BaseModelError, match="lacks model.pth"):
        load_vits(str(tmp_path))
