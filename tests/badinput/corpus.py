"""A corpus of bad input for every task and command, each case a folder made
on the fly and the `lorakit` command a user would type on it.

    python tests/badinput/corpus.py DIR     # write every case under DIR and print its command

Each case writes its files (truncated images, Latin-1 transcripts, pickles
with code in them, symlinks out of the folder...) and says what the one error
line must name. ``test_corpus.py`` runs every case through the real CLI and
checks what a user should see: a non-zero exit, no traceback, one message
naming the file, nothing new where the output would go, no code run from any
file, and nothing touched outside the folders named on the command line.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # run as a script too

from cli_failure import Payload  # noqa: E402
SAMPLES = REPO / "samples"


@dataclass
class Invocation:
    """A command line and what its error must name."""

    args: list[str]
    names: tuple[str, ...]
    #: Where the command would write: it must gain nothing (or still not exist).
    watch: Path | None = None
    cwd: Path | None = None


@dataclass
class Kit:
    """What the cases are made of: copies of the samples, one trained adapter,
    a folder outside every case that nothing may touch, and the file a payload
    creates if code from a user file ever runs."""

    root: Path
    _adapter: Path | None = field(default=None, repr=False)

    @property
    def outside(self) -> Path:
        """A hand-written caption and an image beside the cases, never named on a command line."""
        folder = self.root / "outside"
        if not folder.exists():
            folder.mkdir(parents=True)
            write_png(folder / "private.png", (10, 10, 10))
            (folder / "private.txt").write_text("a caption written by hand\n")
        return folder

    @property
    def marker(self) -> Path:
        return self.root / "code-ran"

    def payload(self) -> "Payload":
        return Payload(self.marker)

    def adapter(self) -> Path:
        """A caption run trained for two steps on the demo base, made once."""
        if self._adapter is None:
            run = self.root / "shared" / "caption-run"
            if not (run / "adapter").exists():
                from lorakit import runs

                config = runs.load_config("caption", [
                    "--data", str(SAMPLES / "caption/catalog"), "--base", "demo", "--output", str(run),
                    "--train.max_steps", "2", "--data.max_examples", "20"])
                runs.run(config, evaluate=False, show_progress=False)
            self._adapter = run
        return self._adapter

    def run_copy(self, here: Path) -> Path:
        run = here / "run"
        shutil.copytree(self.adapter(), run)
        return run



# -- files ---------------------------------------------------------------------------------


def write_png(path: Path, color: tuple[int, int, int], size: int = 16) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return path


def write_bomb_png(path: Path, side: int = 30000) -> Path:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels of greyscale."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (side + 1) * 8)  # a few rows; the header is what matters
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def write_wav(path: Path, samples, rate: int = 16000) -> Path:
    import numpy as np
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples, dtype="float32"), rate, subtype="FLOAT")
    return path


def tone(seconds: float = 1.5, rate: int = 16000):
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t)


def photos(here: Path, count: int = 3, layout: str = "jsonl") -> Path:
    """A small caption folder: PNGs with captions in metadata.jsonl, .txt sidecars or (``none``) none."""
    folder = here / "photos"
    rows = []
    for i in range(count):
        name = f"img{i}.png"
        write_png(folder / name, (40 * i, 200 - 40 * i, 90))
        rows.append({"file_name": name, "text": f"a square of colour {i}"})
    if layout == "jsonl":
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif layout == "sidecar":
        for row in rows:
            (folder / row["file_name"]).with_suffix(".txt").write_text(row["text"])
    return folder


def voice_clips(here: Path, count: int = 4) -> Path:
    """A voice folder in the LJSpeech layout: wavs/ and metadata.csv."""
    folder = here / "voice"
    lines = []
    for i, word in enumerate(["one", "two", "three", "four", "five", "six"][:count]):
        write_wav(folder / "wavs" / f"clip{i}.wav", tone())
        lines.append(f"clip{i}|Sentence {word} is here.|Sentence {word} is here.")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def train(task: str, data: Path, here: Path, *extra: object, names: tuple[str, ...], base: object = "demo"
          ) -> Invocation:
    out = here / "out"
    return Invocation(["train", task, "--data", str(data), "--base", str(base), "--output", str(out),
                       *map(str, extra)], names, watch=out)


# -- the cases -----------------------------------------------------------------------------

CASES: dict[str, Callable[[Kit, Path], Invocation]] = {}


def case(function: Callable[[Kit, Path], Invocation]) -> Callable[[Kit, Path], Invocation]:
    CASES[function.__name__.replace("_", "-")] = function
    return function


# command line and settings

@case
def unknown_task(kit, here):
    return Invocation(["run", "no-such-task", "--output", str(here / "out")], ("no-such-task",), here / "out")


@case
def unknown_setting(kit, here):
    return train("caption", photos(here), here, "--train.no_such_setting", "1", names=("no_such_setting",))


@case
def setting_not_a_number(kit, here):
    return train("caption", photos(here), here, "--train.lr", "fast", names=("lr", "fast"))


@case
def absurd_batch_size(kit, here):
    return train("caption", photos(here), here, "--train.batch_size", "100000000", names=("batch_size",))


@case
def negative_steps(kit, here):
    return train("caption", photos(here), here, "--train.max_steps", "-5", names=("max_steps",))


@case
def lora_rank_zero(kit, here):
    return train("caption", photos(here), here, "--lora.r", "0", names=("lora.r",))


@case
def unknown_lora_target(kit, here):
    return train("caption", photos(here), here, "--lora.targets", "[no_such_layer]", names=("no_such_layer",))


@case
def output_is_a_file(kit, here):
    out = here / "out"
    out.write_text("my notes\n")
    invocation = train("caption", photos(here), here, names=(str(out),))
    return invocation


@case
def output_holds_a_run(kit, here):
    out = here / "out"
    shutil.copytree(kit.adapter(), out)
    return train("caption", photos(here), here, names=(str(out), "--resume"))


@case
def resume_without_a_run(kit, here):
    return train("caption", photos(here), here, "--resume", names=(str(here / "out"),))


@case
def recipe_file_missing(kit, here):
    return Invocation(["run", str(here / "mine.yaml")], (str(here / "mine.yaml"),))


@case
def recipe_not_yaml(kit, here):
    recipe = here / "mine.yaml"
    recipe.write_text("task: caption\ntrain: {lr: 1e-4\n")
    return Invocation(["run", str(recipe), "--output", str(here / "out")], (str(recipe),), here / "out")


@case
def recipe_python_tag(kit, here):
    recipe = here / "mine.yaml"
    recipe.write_text(f"task: caption\nbase: !!python/object/apply:os.system ['touch {kit.marker}']\n")
    return Invocation(["run", str(recipe), "--output", str(here / "out")], (str(recipe),), here / "out")


@case
def recipe_a_list(kit, here):
    recipe = here / "mine.yaml"
    recipe.write_text("- caption\n- demo\n")
    return Invocation(["run", str(recipe), "--output", str(here / "out")], (str(recipe),), here / "out")


@case
def recipe_latin_1(kit, here):
    recipe = here / "mine.yaml"
    recipe.write_bytes("# légende\ntask: caption\n".encode("latin-1"))
    return Invocation(["run", str(recipe), "--output", str(here / "out")], (str(recipe), "UTF-8"), here / "out")


@case
def recipe_unknown_section(kit, here):
    recipe = here / "mine.yaml"
    recipe.write_text("task: caption\ntrainer:\n  lr: 0.001\n")
    return Invocation(["run", str(recipe), "--output", str(here / "out")], ("trainer",), here / "out")


@case
def base_folder_missing(kit, here):
    return train("caption", photos(here), here, names=(str(here / "nowhere"),), base=here / "nowhere")


@case
def base_folder_empty(kit, here):
    (here / "base").mkdir()
    return train("caption", photos(here), here, names=(str(here / "base"),), base=here / "base")


@case
def base_config_not_json(kit, here):
    from lorakit_caption.task import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    (here / "base" / "config.json").write_text("{not json")
    return train("caption", photos(here), here, names=(str(here / "base" / "config.json"),), base=here / "base")


@case
def base_weights_truncated(kit, here):
    from lorakit_caption.task import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    weights = here / "base" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return train("caption", photos(here), here, names=(str(weights),), base=here / "base")


@case
def base_bin_with_code(kit, here):
    import torch
    from lorakit_caption.task import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    (here / "base" / "model.safetensors").unlink()
    torch.save({"text_decoder.bias": kit.payload()}, here / "base" / "pytorch_model.bin")
    return train("caption", photos(here), here, names=(str(here / "base" / "pytorch_model.bin"), "code"),
                 base=here / "base")


@case
def data_folder_missing(kit, here):
    return train("caption", here / "nowhere", here, names=(str(here / "nowhere"),))


@case
def data_folder_empty(kit, here):
    (here / "photos").mkdir()
    return train("caption", here / "photos", here, names=(str(here / "photos"),))


@case
def data_is_a_file(kit, here):
    write_png(here / "one.png", (1, 2, 3))
    return train("caption", here / "one.png", here, names=(str(here / "one.png"),))


# caption training data

@case
def caption_images_without_captions(kit, here):
    folder = here / "photos"
    for i in range(3):
        write_png(folder / f"img{i}.png", (i, i, i))
    return train("caption", folder, here, names=(str(folder),))


@case
def caption_csv_without_text_column(kit, here):
    folder = photos(here, layout="none")
    (folder / "metadata.csv").write_text("file_name,label\nimg0.png,red\n")
    return train("caption", folder, here, names=(str(folder / "metadata.csv"), "text"))


@case
def caption_csv_names_missing_image(kit, here):
    folder = photos(here, layout="none")
    (folder / "metadata.csv").write_text("file_name,text\nimg0.png,a\nimg9.png,b\n")
    return train("caption", folder, here, names=("img9.png",))


@case
def caption_jsonl_broken_line(kit, here):
    folder = photos(here)
    with open(folder / "metadata.jsonl", "a") as handle:
        handle.write('{"file_name": "img0.png", "text": \n')
    return train("caption", folder, here, names=(f"{folder / 'metadata.jsonl'}:4",))


@case
def caption_csv_latin_1(kit, here):
    folder = photos(here)
    (folder / "metadata.jsonl").unlink()
    (folder / "metadata.csv").write_bytes("file_name,text\nimg0.png,a café\n".encode("latin-1"))
    return train("caption", folder, here, names=(f"{folder / 'metadata.csv'}:2", "UTF-8"))


@case
def caption_jsonl_latin_1(kit, here):
    folder = photos(here)
    (folder / "metadata.jsonl").write_bytes('{"file_name": "img0.png", "text": "café"}\n'.encode("latin-1"))
    return train("caption", folder, here, names=(f"{folder / 'metadata.jsonl'}:1", "UTF-8"))


@case
def caption_sidecar_latin_1(kit, here):
    folder = photos(here, layout="sidecar")
    (folder / "img1.txt").write_bytes("un café".encode("latin-1"))
    return train("caption", folder, here, names=(str(folder / "img1.txt"), "UTF-8"))


@case
def caption_truncated_png(kit, here):
    folder = photos(here)
    image = folder / "img1.png"
    image.write_bytes(image.read_bytes()[:40])
    return train("caption", folder, here, names=(str(image),))


@case
def caption_empty_image(kit, here):
    folder = photos(here)
    (folder / "img2.png").write_bytes(b"")
    return train("caption", folder, here, names=(str(folder / "img2.png"),))


@case
def caption_text_named_png(kit, here):
    folder = photos(here)
    (folder / "img0.png").write_text("this is not an image\n")
    return train("caption", folder, here, names=(str(folder / "img0.png"),))


@case
def caption_decompression_bomb(kit, here):
    folder = photos(here)
    write_bomb_png(folder / "img1.png")
    return train("caption", folder, here, names=(str(folder / "img1.png"), "LORAKIT_MAX_IMAGE_PIXELS"))


@case
def caption_metadata_names_a_file_outside(kit, here):
    folder = photos(here)
    (folder / "metadata.jsonl").write_text(
        json.dumps({"file_name": "../../outside/private.png", "text": "x"}) + "\n")
    return train("caption", folder, here, names=(str(folder / "metadata.jsonl"), "private.png"))


@case
def caption_metadata_symlink_outside(kit, here):
    folder = photos(here)
    (folder / "linked.png").symlink_to(kit.outside / "private.png")
    with open(folder / "metadata.jsonl", "a") as handle:
        handle.write(json.dumps({"file_name": "linked.png", "text": "x"}) + "\n")
    return train("caption", folder, here, names=(str(folder / "linked.png"),))


@case
def caption_sidecar_symlink_outside(kit, here):
    folder = photos(here, layout="sidecar")
    (folder / "linked.png").symlink_to(kit.outside / "private.png")
    (folder / "linked.txt").symlink_to(kit.outside / "private.txt")
    return train("caption", folder, here, names=("linked",))


@case
def caption_empty_caption(kit, here):
    folder = photos(here, layout="sidecar")
    (folder / "img1.txt").write_text("   \n")
    return train("caption", folder, here, names=(str(folder / "img1.txt"),))


# batch captioning

def caption(here: Path, *args: object, names: tuple[str, ...], out: Path | None = None) -> Invocation:
    out = out or here / "captions.jsonl"
    return Invocation(["caption", *map(str, args), "--out", str(out), "--quiet"], names, watch=here / "results")


@case
def batch_input_missing(kit, here):
    return caption(here, here / "nowhere", names=(str(here / "nowhere"),), out=here / "results" / "c.jsonl")


@case
def batch_no_images(kit, here):
    (here / "photos").mkdir()
    (here / "photos" / "notes.txt").write_text("no images here")
    return caption(here, here / "photos", names=(str(here / "photos"),), out=here / "results" / "c.jsonl")


@case
def batch_out_is_a_folder(kit, here):
    (here / "results").mkdir()
    return caption(here, photos(here), names=(str(here / "results"),), out=here / "results")


@case
def batch_resume_out_is_a_folder(kit, here):
    (here / "results").mkdir()
    return caption(here, photos(here), "--resume", names=(str(here / "results"), "is a folder"), out=here / "results")


@case
def batch_out_under_a_file(kit, here):
    (here / "results").write_text("not a folder\n")
    return caption(here, photos(here), names=(str(here / "results"), "is a file"), out=here / "results" / "c.jsonl")


@case
def batch_out_exists(kit, here):
    out = here / "results" / "c.jsonl"
    out.parent.mkdir()
    out.write_text('{"image": "x.png", "caption": "mine"}\n')
    return caption(here, photos(here), names=(str(out), "--resume"), out=out)


@case
def batch_resume_corrupt_line(kit, here):
    folder = photos(here)
    out = here / "results" / "c.jsonl"
    out.parent.mkdir()
    out.write_text(json.dumps({"image": str(folder / "img0.png"), "caption": "a"}) + "\n{broken\n"
                   + json.dumps({"image": str(folder / "img1.png"), "caption": "b"}) + "\n")
    return caption(here, folder, "--resume", names=(str(out), "2"), out=out)


@case
def batch_adapter_missing(kit, here):
    return caption(here, photos(here), "--adapter", here / "no-run", names=(str(here / "no-run"),),
                   out=here / "results" / "c.jsonl")


@case
def batch_adapter_weight_not_a_number(kit, here):
    run = kit.run_copy(here)
    return caption(here, photos(here), "--adapter", f"{run}:heavy", names=("heavy",),
                   out=here / "results" / "c.jsonl")


@case
def batch_adapter_truncated(kit, here):
    run = kit.run_copy(here)
    weights = run / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    return caption(here, photos(here), "--adapter", run, names=("adapter_model.safetensors",),
                   out=here / "results" / "c.jsonl")


@case
def batch_adapter_config_not_json(kit, here):
    run = kit.run_copy(here)
    (run / "adapter" / "adapter_config.json").write_text('{"r": ')
    return caption(here, photos(here), "--adapter", run, names=("adapter_config.json",),
                   out=here / "results" / "c.jsonl")


@case
def batch_clip_pickle_with_code(kit, here):
    import torch

    clip = here / "myclip"
    torch.save({"visual.proj": kit.payload()}, clip)
    return caption(here, photos(here), "--rerank", "clip", "--clip", clip, names=(str(clip),),
                   out=here / "results" / "c.jsonl")


@case
def batch_clip_folder_with_only_a_pickle(kit, here):
    import torch
    from lorakit_caption.clip import DEMO_CLIP

    clip = here / "myclip"  # the Hub layout, its safetensors missing: open_clip alone would unpickle the .bin
    clip.mkdir()
    shutil.copy(DEMO_CLIP / "open_clip_config.json", clip)
    torch.save({"visual.proj": kit.payload()}, clip / "open_clip_pytorch_model.bin")
    return caption(here, photos(here), "--rerank", "clip", "--clip", clip,
                   names=(str(clip), "open_clip_pytorch_model.bin"), out=here / "results" / "c.jsonl")


@case
def batch_bad_beams(kit, here):
    return caption(here, photos(here), "--num-beams", "0", names=("--num-beams", "1<=x<=16"),
                   out=here / "results" / "c.jsonl")


# predict, evaluate, export

@case
def predict_adapter_missing(kit, here):
    image = write_png(here / "photo.png", (5, 5, 5))
    return Invocation(["predict", "caption", "--adapter", str(here / "no-run"), str(image)],
                      (str(here / "no-run"),))


@case
def predict_input_missing(kit, here):
    return Invocation(["predict", "caption", "--adapter", str(kit.adapter()), str(here / "photo.png")],
                      (str(here / "photo.png"),))


@case
def predict_caption_given_a_long_sentence(kit, here):
    sentence = "a red box on a shelf beside a green lamp " * 8  # --text where caption takes images
    return Invocation(["predict", "caption", "--adapter", str(kit.adapter()), "--text", sentence],
                      (sentence[:60], "too long for a file or folder name"))


@case
def predict_folder_without_images(kit, here):
    folder = here / "scans"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    return Invocation(["predict", "caption", "--adapter", str(kit.adapter()), str(folder)], (str(folder), "no images"))


@case
def predict_input_truncated(kit, here):
    image = write_png(here / "photo.png", (5, 5, 5))
    image.write_bytes(image.read_bytes()[:30])
    return Invocation(["predict", "caption", "--adapter", str(kit.adapter()), str(image)], (str(image),))


@case
def predict_adapter_other_shapes(kit, here):
    from safetensors.torch import load_file, save_file

    run = kit.run_copy(here)
    weights = run / "adapter" / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(k for k in tensors if "lora_A" in k)[0]
    tensors[name] = tensors[name][:, :-1].contiguous()
    save_file(tensors, str(weights), metadata={"format": "pt"})
    image = write_png(here / "photo.png", (5, 5, 5))
    return Invocation(["predict", "caption", "--adapter", str(run), str(image)], ("does not fit",))


@case
def predict_wrong_task_for_adapter(kit, here):
    image = write_png(here / "photo.png", (5, 5, 5))
    return Invocation(["predict", "vqa", "--adapter", str(kit.adapter()), str(image), "--question", "what is it?"],
                      ("caption",))


@case
def evaluate_not_a_run(kit, here):
    (here / "folder").mkdir()
    return Invocation(["evaluate", str(here / "folder")], (str(here / "folder"),))


@case
def evaluate_adapter_weights_missing(kit, here):
    run = kit.run_copy(here)
    (run / "adapter" / "adapter_model.safetensors").unlink()
    return Invocation(["evaluate", str(run)], ("adapter_model.safetensors",))


@case
def evaluate_run_data_moved(kit, here):
    run = kit.run_copy(here)
    config = run / "config.yaml"
    trained_on, moved = str(SAMPLES / "caption/catalog"), str(here / "catalog-moved-away")
    assert trained_on in config.read_text(), "the shared run names its data folder in config.yaml"
    config.write_text(config.read_text().replace(trained_on, moved))
    return Invocation(["evaluate", str(run)], (moved, "config.yaml", "--data DIR"))


@case
def evaluate_data_missing(kit, here):
    return Invocation(["evaluate", str(kit.adapter()), "--data", str(here / "nowhere")], (str(here / "nowhere"),))


@case
def export_adapter_config_not_json(kit, here):
    run = kit.run_copy(here)
    (run / "adapter" / "adapter_config.json").write_text("[")
    return Invocation(["export", str(run), "--merged", str(here / "merged")], ("adapter_config.json",),
                      here / "merged")


@case
def export_into_a_file(kit, here):
    (here / "merged").write_text("not a folder\n")
    return Invocation(["export", str(kit.adapter()), "--merged", str(here / "merged")], (str(here / "merged"),),
                      here / "merged")


@case
def export_under_a_file(kit, here):
    (here / "models").write_text("not a folder\n")
    return Invocation(["export", str(kit.adapter()), "--merged", str(here / "models" / "merged")],
                      (str(here / "models"), "is a file"), here / "models")


@case
def predict_out_is_a_folder(kit, here):
    image = write_png(here / "photo.png", (5, 5, 5))
    (here / "results").mkdir()
    return Invocation(["predict", "caption", "--adapter", str(kit.adapter()), str(image), "--out",
                       str(here / "results")], (str(here / "results"), "is a folder"), here / "results")


@case
def report_out_under_a_file(kit, here):
    (here / "site").write_text("not a folder\n")
    return Invocation(["report", str(kit.adapter()), "--out", str(here / "site" / "report.html")],
                      (str(here / "site"), "is a file"), here / "site")


@case
def resume_state_with_code(kit, here):
    import torch

    run = kit.run_copy(here)
    checkpoint = run / "checkpoints" / "last"
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "state.json").write_text(json.dumps({"step": 1}))
    torch.save({"optimizers": kit.payload()}, checkpoint / "trainer_state.pt")
    (run / "adapter").rename(here / "moved-adapter")  # an unfinished run, so --resume reads the checkpoint
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(str(kit.adapter()), str(run)))
    return Invocation(["run", "caption", "--data", str(SAMPLES / "caption/catalog"), "--base", "demo",
                       "--output", str(run), "--train.max_steps", "2", "--data.max_examples", "20", "--resume"],
                      ("trainer_state.pt", "code"))


# visual question answering

def vqa_pair(here: Path, questions: object, annotations: object) -> Invocation:
    (here / "images").mkdir(exist_ok=True)
    write_png(here / "images" / "COCO_val2014_000000000001.jpg", (1, 2, 3))
    for name, value in (("q.json", questions), ("a.json", annotations)):
        (here / name).write_text(value if isinstance(value, str) else json.dumps(value))
    return Invocation(["vqa-import", "--questions", str(here / "q.json"), "--annotations", str(here / "a.json"),
                       "--images", str(here / "images")], (), here / "images")


def _annotation(qid: int = 1, image_id: int = 1) -> dict:
    return {"question_id": qid, "image_id": image_id, "multiple_choice_answer": "red",
            "answers": [{"answer": "red", "answer_id": 1}]}


@case
def vqa_import_no_question_id(kit, here):
    invocation = vqa_pair(here, {"questions": [{"image_id": 1, "question": "what colour?"}]},
                          {"annotations": [_annotation()]})
    invocation.names = (str(here / "q.json"), "question_id")
    return invocation


@case
def vqa_import_unpaired(kit, here):
    invocation = vqa_pair(here, {"questions": [{"image_id": 1, "question": "what colour?", "question_id": 7}]},
                          {"annotations": [_annotation(qid=8)]})
    invocation.names = (str(here / "a.json"), "question_id 8")
    return invocation


@case
def vqa_import_image_missing(kit, here):
    invocation = vqa_pair(here, {"questions": [{"image_id": 42, "question": "what colour?", "question_id": 1}]},
                          {"annotations": [_annotation(image_id=42)]})
    invocation.names = ("42",)
    return invocation


@case
def vqa_import_not_json(kit, here):
    invocation = vqa_pair(here, "{questions: oops", {"annotations": []})
    invocation.names = (str(here / "q.json"),)
    return invocation


@case
def vqa_import_question_not_text(kit, here):
    invocation = vqa_pair(here, {"questions": [{"image_id": 1, "question": 5, "question_id": 1}]},
                          {"annotations": [_annotation()]})
    invocation.names = (str(here / "q.json"), "question")
    return invocation


def vqa_folder(here: Path, lines: list) -> Path:
    folder = here / "inspection"
    for i in range(3):
        write_png(folder / f"item{i}.png", (50 * i, 20, 20))
    (folder / "questions.jsonl").write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return folder


def _question(i: int = 0, **change) -> dict:
    return {"image": f"item{i}.png", "question": "what is the damage?", "answers": ["crack"], **change}


@case
def vqa_questions_latin_1(kit, here):
    folder = vqa_folder(here, [_question(0)])
    (folder / "questions.jsonl").write_bytes(
        (json.dumps(_question(0)) + "\n" + '{"image": "item1.png", "question": "fissuré?", "answers": ["x"]}\n'
         ).encode("latin-1"))
    return train("vqa", folder, here, names=(f"{folder / 'questions.jsonl'}:2", "UTF-8"))


@case
def vqa_question_without_answers(kit, here):
    folder = vqa_folder(here, [_question(0), {"image": "item1.png", "question": "what?"}])
    return train("vqa", folder, here, names=(f"{folder / 'questions.jsonl'}:2", "answer"))


@case
def vqa_question_names_missing_image(kit, here):
    folder = vqa_folder(here, [_question(0), _question(9)])
    return train("vqa", folder, here, names=("item9.png",))


@case
def vqa_questions_broken_json(kit, here):
    folder = vqa_folder(here, [_question(0), '{"image": "item1.png",'])
    return train("vqa", folder, here, names=(f"{folder / 'questions.jsonl'}:2",))


@case
def vqa_image_outside(kit, here):
    folder = vqa_folder(here, [_question(0), {**_question(0), "image": "../../outside/private.png"}])
    return train("vqa", folder, here, names=("private.png",))


# voice cloning

@case
def voice_metadata_latin_1(kit, here):
    folder = voice_clips(here)
    (folder / "metadata.csv").write_bytes("clip0|Un café.|Un café.\n".encode("latin-1"))
    return train("voice-clone", folder, here, names=(f"{folder / 'metadata.csv'}:1", "UTF-8"))


@case
def voice_metadata_missing_clip(kit, here):
    folder = voice_clips(here)
    with open(folder / "metadata.csv", "a") as handle:
        handle.write("clip9|Where is it?|Where is it?\n")
    return train("voice-clone", folder, here, names=("clip9",))


@case
def voice_metadata_one_column(kit, here):
    folder = voice_clips(here)
    (folder / "metadata.csv").write_text("clip0\nclip1\n")
    return train("voice-clone", folder, here, names=(str(folder / "metadata.csv"),))


@case
def voice_silent_clip(kit, here):
    import numpy as np

    folder = voice_clips(here)
    write_wav(folder / "wavs" / "clip1.wav", np.zeros(24000))
    return train("voice-clone", folder, here, names=(str(folder / "wavs" / "clip1.wav"), "silent"))


@case
def voice_nan_clip(kit, here):
    import numpy as np

    folder = voice_clips(here)
    samples = tone()
    samples[100:200] = np.nan
    write_wav(folder / "wavs" / "clip2.wav", samples)
    return train("voice-clone", folder, here, names=(str(folder / "wavs" / "clip2.wav"), "NaN"))


@case
def voice_text_named_wav(kit, here):
    folder = voice_clips(here)
    (folder / "wavs" / "clip0.wav").write_text("not audio\n")
    return train("voice-clone", folder, here, names=(str(folder / "wavs" / "clip0.wav"),))


@case
def voice_base_checkpoint_with_code(kit, here):
    import torch
    from lorakit_voice.base import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    torch.save({"model": kit.payload()}, here / "base" / "model.pth")
    return train("voice-clone", voice_clips(here), here, names=(str(here / "base" / "model.pth"), "code"),
                 base=here / "base")


@case
def voice_base_speakers_file_outside(kit, here):
    from lorakit_voice.base import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    secret = kit.outside / "speakers.json"
    secret.write_text("{}")
    config = json.loads((here / "base" / "config.json").read_text())
    config["speakers_file"] = str(secret)
    config.setdefault("model_args", {})["speakers_file"] = str(secret)
    (here / "base" / "config.json").write_text(json.dumps(config))
    return train("voice-clone", voice_clips(here), here, names=("config.json", "speakers_file"), base=here / "base")


@case
def voice_base_config_not_json(kit, here):
    from lorakit_voice.base import DEMO_BASE

    shutil.copytree(DEMO_BASE, here / "base")
    (here / "base" / "config.json").write_text("{")
    return train("voice-clone", voice_clips(here), here, names=(str(here / "base" / "config.json"),),
                 base=here / "base")


@case
def voice_predict_no_text(kit, here):
    return Invocation(["predict", "voice-clone", "--base", "demo", "--out", str(here / "out.wav")], ("--text",),
                      here / "out.wav")


@case
def voice_predict_two_texts_one_wav(kit, here):
    return Invocation(["predict", "voice-clone", "--base", "demo", "--text", "Hello.", "--text", "Goodbye.",
                       "--out", str(here / "out.wav")], ("2 audio predictions", "--out FOLDER"), here / "out.wav")


@case
def voice_predict_out_under_a_file(kit, here):
    (here / "clips").write_text("not a folder\n")
    return Invocation(["predict", "voice-clone", "--base", "demo", "--text", "Hello.",
                       "--out", str(here / "clips" / "hello.wav")], (str(here / "clips"), "is a file"), here / "clips")


# music style

def music_folder(here: Path, count: int = 3) -> Path:
    folder = here / "tracks"
    rows = []
    for i in range(count):
        write_wav(folder / f"t{i}.wav", tone(2.0, 32000), rate=32000)
        rows.append({"file_name": f"t{i}.wav", "text": f"calm tune number {i}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@case
def music_descriptions_latin_1(kit, here):
    folder = music_folder(here)
    (folder / "metadata.jsonl").write_bytes('{"file_name": "t0.wav", "text": "café jazz"}\n'.encode("latin-1"))
    return train("music-style", folder, here, names=(f"{folder / 'metadata.jsonl'}:1", "UTF-8"))


@case
def music_empty_track(kit, here):
    folder = music_folder(here)
    (folder / "t1.wav").write_bytes(b"")
    return train("music-style", folder, here, names=(str(folder / "t1.wav"),))


@case
def music_no_descriptions(kit, here):
    folder = music_folder(here)
    (folder / "metadata.jsonl").unlink()
    return train("music-style", folder, here, names=(str(folder),))


@case
def music_inf_track(kit, here):
    import numpy as np

    folder = music_folder(here)
    samples = tone(2.0, 32000)
    samples[500] = np.inf
    write_wav(folder / "t2.wav", samples, rate=32000)
    return train("music-style", folder, here, names=(str(folder / "t2.wav"),))


# medical images and Hugging Face datasets

@case
def dicom_report_among_scans(kit, here):
    """A PACS export with a structured report (no pixels) among its images."""
    import pydicom

    folder = photos(here, layout="sidecar")
    shutil.copy(Path(pydicom.__file__).parent / "data" / "test_files" / "reportsi.dcm", folder / "IM000009")
    (folder / "IM000009.txt").write_text("the radiologist's report")
    return train("caption", folder, here, names=(str(folder / "IM000009"), "without an image (SR"))


def png_bytes(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


def hub_dataset(here: Path, rows: list[dict], features: dict) -> Path:
    from hf_dataset import write_hub_dataset

    return write_hub_dataset(here / "dataset", {"train": rows}, features)


@case
def caption_import_image_not_decodable(kit, here):
    from hf_dataset import IMAGE, TEXT, image_cell

    rows = [{"image": image_cell(b"\x89PNG\r\n\x1a\n" + b"x" * 40, "a.png"), "text": "a square"}]
    dataset = hub_dataset(here, rows, {"image": IMAGE, "text": TEXT})
    return Invocation(["caption-import", str(dataset), "--out", str(here / "out")],
                      ("train-00000-of-00001.parquet row 0",), here / "out")


@case
def caption_import_parquet_truncated(kit, here):
    from hf_dataset import IMAGE, TEXT, image_cell

    rows = [{"image": image_cell(png_bytes((9, 9, 9)), "a.png"), "text": "a square"}]
    dataset = hub_dataset(here, rows, {"image": IMAGE, "text": TEXT})
    shard = next((dataset / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2])
    return Invocation(["caption-import", str(dataset), "--out", str(here / "out")], (str(shard),), here / "out")


@case
def vqa_import_dataset_without_answers(kit, here):
    from hf_dataset import IMAGE, TEXT, image_cell

    rows = [{"image": image_cell(png_bytes((9, 9, 9)), "a.png"), "question": "what colour?", "label": None}]
    dataset = hub_dataset(here, rows, {"image": IMAGE, "question": TEXT, "label": TEXT})
    return Invocation(["vqa-import", str(dataset), "--out", str(here / "out")],
                      ("no rows of split 'train'", "1 rows without an answer"), here / "out")


# other commands

@case
def plan_memory_not_a_size(kit, here):
    return Invocation(["plan", "caption", "--data", str(photos(here)), "--base", "demo", "--memory", "lots"],
                      ("lots",))


@case
def new_plugin_bad_name(kit, here):
    return Invocation(["new-plugin", "Bad Name!", "--out", str(here / "plugins")], ("Bad Name!",), here / "plugins")


@case
def new_plugin_exists(kit, here):
    (here / "plugins" / "lorakit-tags").mkdir(parents=True)
    (here / "plugins" / "lorakit-tags" / "mine.py").write_text("# my code\n")
    return Invocation(["new-plugin", "tags", "--out", str(here / "plugins")], ("lorakit-tags",), here / "plugins")


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    kit = Kit(Path(argv[0]).resolve())
    kit.outside  # noqa: B018 (made before any case)
    for name, make in CASES.items():
        here = kit.root / name
        here.mkdir(parents=True)
        invocation = make(kit, here)
        print(f"# {name}: must name {', '.join(invocation.names)}")
        print("lorakit " + " ".join(invocation.args))


if __name__ == "__main__":
    main(sys.argv[1:])
