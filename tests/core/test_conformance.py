"""lorakit.testing: the kit plugin authors call. The toy tasks pass it; a
broken task fails it with an AssertionError that names what to fix."""

import json
import shutil
from pathlib import Path

import pytest

from lorakit.api import ConfigError, PredictsInParts, Task
from lorakit.plugins import get_host
from lorakit.testing import check_contract, check_task

from toy_plugin import ToyPairTask, ToyTask

REPO = Path(__file__).resolve().parents[2]
POINTS = ["0.1,0.2,0.3,0.4", "--point", "1,1,1,1"]


def test_toy_task_passes_the_conformance_kit(toy_data, tmp_path):
    report = check_task(ToyTask, data=toy_data, workdir=tmp_path, predict_args=POINTS)
    assert report.checks == ["contract", "command-line-inputs", "train-evaluate-export", "writes-samples",
                             "stock-peft-reload", "predict-cli", "exact-resume", "merged-export"]
    assert report.merge_difference < 1e-4
    assert [r["input"] for r in report.predictions] == ["0.1,0.2,0.3,0.4", "1,1,1,1"]
    assert set(report.metrics["test"]["adapter"]) == {"mse"}


def test_several_optimizers_are_checked(toy_data, tmp_path):
    report = check_task(ToyPairTask, data=toy_data, workdir=tmp_path, predict_args=POINTS,
                        flags=["--head_lr", "0.01"])
    assert report.checks[:3] == ["contract", "command-line-inputs", "several-optimizers"]


def test_the_kit_passes_while_another_toy_is_registered(toy_host, toy_data, tmp_path):
    """An installed copy of the plugin under test must not make the kit fail
    with "already registered by another plugin"."""

    class InstalledCopy(ToyTask):  # another class object with the same task name
        pass

    assert toy_host.task("toy") is ToyTask
    report = check_task(InstalledCopy, data=toy_data, workdir=tmp_path, predict_args=POINTS)
    assert "predict-cli" in report.checks
    assert get_host() is toy_host and toy_host.task("toy") is ToyTask  # the process host is left as it was


def test_a_broken_predict_fails_naming_predict(toy_data, tmp_path):
    class ForgetfulPredict(ToyTask):
        def predict(self, base, model, inputs):
            return super().predict(base, model, inputs)[:1]  # one record for two inputs

    with pytest.raises(AssertionError, match=r"step 'predict through the CLI.*1 records for 2 inputs"):
        check_task(ForgetfulPredict, data=toy_data, workdir=tmp_path, predict_args=POINTS)


def test_audio_predictions_must_be_declared(toy_data, tmp_path):
    """``lorakit predict`` asks for --out before loading only for a task
    that says its predictions are audio: the kit holds the task to it."""
    import numpy as np

    class SpeakingToy(ToyTask):
        def predict(self, base, model, inputs):
            return [{**r, "audio": np.zeros(160, dtype=np.float32), "sample_rate": 16000}
                    for r in super().predict(base, model, inputs)]

    with pytest.raises(AssertionError, match=r"predict's records carry audio; set predicts_audio = True"):
        check_task(SpeakingToy, data=toy_data, workdir=tmp_path / "a", predict_args=[*POINTS, "--out",
                                                                                     str(tmp_path / "wavs")])

    class SilentToy(ToyTask):
        predicts_audio = True

    with pytest.raises(AssertionError, match=r"predicts_audio is True but predict's records carry no 'audio'"):
        check_task(SilentToy, data=toy_data, workdir=tmp_path / "b", predict_args=[*POINTS, "--out",
                                                                                   str(tmp_path / "lines.jsonl")])


def test_a_crashing_predict_fails_naming_predict(toy_data, tmp_path):
    class CrashingPredict(ToyTask):
        def predict(self, base, model, inputs):
            raise KeyError("logits")

    with pytest.raises(AssertionError, match=r"predict through the CLI.*KeyError") as info:
        check_task(CrashingPredict, data=toy_data, workdir=tmp_path, predict_args=POINTS)
    assert "lorakit predict toy --adapter" in str(info.value)


def test_lorakit_errors_become_assertions_naming_the_step(toy_data, tmp_path):
    class PickyData(ToyTask):
        def load_data(self, path, base, role="data"):
            raise ConfigError("options.labels [a, b] are not in the data")

    with pytest.raises(AssertionError, match=r"step 'train, evaluate and export.*labels \[a, b\]") as info:
        check_task(PickyData, data=toy_data, workdir=tmp_path, predict_args=POINTS)
    assert isinstance(info.value.__cause__, ConfigError)


def test_a_loss_that_misses_the_adapter_is_caught(toy_data, tmp_path):
    class DetachedLoss(ToyTask):
        def loss(self, base, model, batch):
            import torch

            return torch.ones((), requires_grad=True) * batch["y"].square().mean()  # never calls model

    with pytest.raises(AssertionError, match="LoRA B weight is still zero"):
        check_task(DetachedLoss, data=toy_data, workdir=tmp_path, predict_args=POINTS)


def test_predict_args_are_required(toy_data, tmp_path):
    with pytest.raises(AssertionError, match="needs predict_args"):
        check_task(ToyTask, data=toy_data, workdir=tmp_path)


def test_contract_check_names_what_is_missing():
    class Half(Task):
        name = "half-done"
        description = "x"
        metrics = {"accuracy": "max"}
        lora_targets = ["q"]

        def load_base(self, name):
            raise NotImplementedError

    with pytest.raises(AssertionError, match="load_data, collate, loss, evaluate, predict, probe"):
        check_contract(Half)

    class BadDirection(ToyTask):
        metrics = {"mse": "lower"}

    with pytest.raises(AssertionError, match="'max' or 'min'"):
        check_contract(BadDirection)

    class BadOptionalDirection(ToyTask):
        optional_metrics = {"extra": "higher"}

    with pytest.raises(AssertionError, match=r"optional_metrics directions must be 'max' or 'min'.*extra"):
        check_contract(BadOptionalDirection)

    class TwiceDeclared(ToyTask):
        optional_metrics = {"mse": "min"}

    with pytest.raises(AssertionError, match=r"\['mse'\] declared in both metrics and optional_metrics"):
        check_contract(TwiceDeclared)

    class SwitchOfNoMetric(ToyTask):
        metric_options = {"accuracy": "report_mae"}

    with pytest.raises(AssertionError, match=r"metric_options names \['accuracy'\], which optional_metrics"):
        check_contract(SwitchOfNoMetric)

    class SwitchOfNoOption(ToyTask):
        metric_options = {"mae": "report_mea"}

    with pytest.raises(AssertionError, match=r"metric_options \{'mae': 'report_mea'\} name no field of ToyOptions"):
        check_contract(SwitchOfNoOption)

    class NoTargets(ToyTask):
        lora_targets = []

    with pytest.raises(AssertionError, match="lora_targets"):
        check_contract(NoTargets)

    class BadName(ToyTask):
        name = "Toy_Task"

    with pytest.raises(AssertionError, match="kebab-case"):
        check_contract(BadName)


def test_contract_check_options_and_capabilities():
    from dataclasses import dataclass

    from lorakit.api import MergedExport, SeveralOptimizers, TaskOptions

    @dataclass
    class NoDefault(TaskOptions):
        labels: str

    class NeedsLabels(ToyTask):
        options_class = NoDefault

    with pytest.raises(AssertionError, match="give labels one"):
        check_contract(NeedsLabels)

    class HalfGan(ToyTask, SeveralOptimizers):
        def optimizer_groups(self, base, model):
            return {}

    with pytest.raises(AssertionError, match="SeveralOptimizers but does not implement training_step"):
        check_contract(HalfGan)

    class ExportsNothing(ToyTask, MergedExport):
        export_formats = {"onnx": "an ONNX model"}

        def save_merged(self, base, model, path):
            pass

    with pytest.raises(AssertionError, match=r"export_formats \['onnx'\] but does not implement save_export"):
        check_contract(ExportsNothing)

    class MergedAgain(ExportsNothing):
        export_formats = {"merged": "the same as --merged"}

    with pytest.raises(AssertionError, match="not 'merged'"):
        check_contract(MergedAgain)

    class BadAlias(ToyTask):
        aliases = {"speaker": "data.folder"}

    with pytest.raises(AssertionError, match="alias --speaker points to 'data.folder'"):
        check_contract(BadAlias)


def test_contract_1_leftovers_are_named_with_their_replacement():
    class Old(ToyTask):
        defaults = {"train": {"lr": 1e-3}}
        default_targets = ["encoder"]

        def summarize_data(self, examples):
            return {}

    with pytest.raises(AssertionError) as info:
        check_contract(Old)
    message = str(info.value)
    assert "defaults: ship a recipe named after the task" in message
    assert "default_targets: rename it lora_targets" in message
    assert "summarize_data: put the summary into the Data" in message


def test_optimizer_groups_must_cover_the_trainable_parameters(toy_data, tmp_path):
    from lorakit.api import OptimizerGroup

    class HeadOnly(ToyPairTask):
        def optimizer_groups(self, base, model):
            groups = super().optimizer_groups(base, model)
            return {"head": groups["head"], "encoder": OptimizerGroup([])}

    with pytest.raises(AssertionError, match=r"step 'optimizer_groups'.*in no group \(base_model.model.encoder"):
        check_task(HeadOnly, data=toy_data, workdir=tmp_path, predict_args=POINTS)

    class UnknownGroup(ToyPairTask):
        def training_step(self, base, model, batch):
            yield "critic", self.loss(base, model, batch)

    with pytest.raises(AssertionError, match="group 'critic'"):
        check_task(UnknownGroup, data=toy_data, workdir=tmp_path / "2", predict_args=POINTS)


@pytest.mark.slow
def test_caption_task_passes_the_conformance_kit(tmp_path):
    from lorakit_caption.task import CaptionTask

    catalog = REPO / "samples" / "caption" / "catalog"
    small = tmp_path / "data"
    small.mkdir()
    rows = (catalog / "metadata.jsonl").read_text().splitlines()[:20]
    (small / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    for row in rows:
        name = json.loads(row)["file_name"]
        shutil.copy(catalog / name, small / name)
    image = str(small / json.loads(rows[0])["file_name"])
    report = check_task(CaptionTask, data=small, workdir=tmp_path / "work", steps=4, predict_args=[image])
    assert set(report.metrics["test"]["adapter"]) == {"cider", "bleu4"}


class PartsToy(ToyTask, PredictsInParts):
    """Speaks a toy "text" of points joined by ';' as audio, part by part:
    each point's outputs are samples, parts joined by one sample of silence."""

    predicts_audio = True
    part_gap_seconds = 0.001

    def input_parts(self, base, input):
        return [part for part in str(input).split(";") if part]

    def predict(self, base, model, inputs):
        import numpy as np

        records = []
        for text in inputs:
            pieces = [np.asarray(r["y"], dtype=np.float32).reshape(-1)
                      for r in super().predict(base, model, self.input_parts(base, text))]
            gap = np.zeros(1, dtype=np.float32)  # part_gap_seconds at 1000 samples a second
            audio = np.concatenate([x for i, piece in enumerate(pieces) for x in ([gap, piece] if i else [piece])])
            records.append({"input": text, "audio": audio, "sample_rate": 1000})
        return records


def test_parts_joined_must_sound_as_the_whole(toy_data, tmp_path):
    """A task that predicts in parts passes when its parts, predicted alone
    and joined by its gap, are the whole; a gap that lies fails the kit."""
    args = ["0.1,0.2,0.3,0.4;1,1,1,1;0,0,0,1", "--out", str(tmp_path / "wavs")]
    report = check_task(PartsToy, data=toy_data, workdir=tmp_path / "good", predict_args=args)
    assert "predicts-in-parts" in report.checks

    class WrongGap(PartsToy):
        part_gap_seconds = 0.003  # says 3 samples, joins with 1

    with pytest.raises(AssertionError, match=r"predict part by part \(input_parts\).*3 parts joined makes"):
        check_task(WrongGap, data=toy_data, workdir=tmp_path / "bad", predict_args=args)

    class NotAudio(PartsToy):
        predicts_audio = False

    with pytest.raises(AssertionError, match="declares PredictsInParts.*set predicts_audio = True"):
        check_contract(NotAudio)
