#!/usr/bin/env bash
# lorakit's GPU checks in one command, for a GPU machine without network.
#
#     bash bench/gpu_session.sh [STEPS]        STEPS: comma-separated, default suite,bench,real
#
# Run from the repository root, with .gpu-kit/ (built beforehand by bench/gpu_kit.sh on a machine
# with network) copied beside it.
#
#   setup      (always) the kit's wheels into $GPU_SITE (pip --target, no network, --no-deps),
#              lorakit and the example plugin registered there (entry points), the kit's .debs
#              (if any) unpacked under /tmp/debroot; then nvidia-smi, versions, an import check
#              and `lorakit plugins`
#   suite      python3 -m pytest -m gpu tests/gpu           (every task on CUDA; QLoRA skips
#              without bitsandbytes, which the kit leaves out)
#   bench      python3 bench/gpu.py --cache $GPU_REAL_DIR   (real-size BLIP-base: bf16 vs fp32,
#              TFLOP/s, LoRA vs full fine-tuning memory)
#   real       one short `lorakit run` per task on the real-size bases of bench/real_size.py
#              (caption, voice-clone, vqa, music-style), each with its peak GPU memory
#
# The real-size bases are built on the CPU in the background from the start (bench/real_size.py,
# log real-build.log), while the suite runs on the GPU. Every step has its own time limit and
# the whole script stops starting steps when its budget ($GPU_SESSION_BUDGET seconds, default
# 480) is spent, so it ends within 10 minutes; a failing step does not stop the
# next one. Logs go to $OUT (default /tmp/gpu-session-out; 8 files: session.log, summary.txt, suite.log, suite.xml,
# bench.log, real.log, real-build.log); the last lines printed are the summary, one per step.
#
# Settings (environment): GPU_SESSION_BUDGET (480), SUITE_S (270), BENCH_S (150), REAL_S (110,
# per task), REAL_TASKS ("caption voice vqa music"), REAL_STEPS (10), SUITE_WORKERS (3; pytest-xdist
# workers, 0 = none), GPU_SITE (/tmp/site), GPU_REAL_DIR (/tmp/real).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
REPO=$PWD
T0=$SECONDS
BUDGET=${GPU_SESSION_BUDGET:-480}
OUT=${OUT:-/tmp/gpu-session-out}
SITE=${GPU_SITE:-/tmp/site}
REAL=${GPU_REAL_DIR:-/tmp/real}
STEPS=",${1:-suite,bench,real},"
for s in ${STEPS//,/ }; do
    case "$s" in suite|bench|real) ;; *) echo "gpu_session.sh: unknown step '$s' (suite, bench, real)" >&2; exit 2 ;; esac
done
wants() { [[ $STEPS == *",$1,"* ]]; }
mkdir -p "$OUT"

SUMMARY=()
note() { SUMMARY+=("$(printf '%-14s %s' "$1" "$2")"); }
left() { echo $(( BUDGET - (SECONDS - T0) )); }

# step NAME CAP LOG COMMAND...: run COMMAND under `timeout` (CAP seconds, less if the budget is
# nearly spent; skipped when under 45 s are left), its output to $OUT/LOG and to the session log;
# one summary line.
step() {
    local name=$1 cap=$2 log=$3; shift 3
    local remaining limit started rc status
    remaining=$(left)
    if (( remaining < 45 )); then
        note "$name" "SKIPPED (only ${remaining}s of the ${BUDGET}s budget left)"
        echo "=== $name: skipped, only ${remaining}s of the budget left"
        return 0
    fi
    limit=$(( cap < remaining - 5 ? cap : remaining - 5 ))
    echo
    echo "=== $name (limit ${limit}s, $(( SECONDS - T0 ))s into the session) -> $OUT/$log"
    started=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status="ok" ;;
        124|137) status="TIMEOUT after ${limit}s" ;;
        *) status="FAILED rc=$rc" ;;
    esac
    note "$name" "$(printf '%-22s %4ds' "$status" $(( SECONDS - started )))"
    return 0
}

setup() {
    echo "=== setup ($(date -u +%FT%TZ), repo $REPO, kit: $(head -1 .gpu-kit/MANIFEST.txt 2>/dev/null || echo MISSING))"
    if [[ ! -d .gpu-kit/wheels ]]; then
        echo "setup: .gpu-kit/wheels is missing: build it with bench/gpu_kit.sh and copy .gpu-kit here"
        return 1
    fi

    # espeak-ng (only with `gpu_kit.sh --with-espeak`; none of the steps needs it): unpacked into a
    # private root rather than / (no root needed, none of the machine's own libraries replaced) and
    # run through a wrapper that points it at its libraries and its data.
    if compgen -G ".gpu-kit/debs/*.deb" >/dev/null; then
        local root=/tmp/debroot lib=/tmp/debroot/usr/lib/x86_64-linux-gnu
        for f in .gpu-kit/debs/*.deb; do dpkg -x "$f" "$root" || echo "setup: dpkg -x $f failed"; done
        mkdir -p "$root/bin"
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%s:%s/pulseaudio${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ESPEAK_DATA_PATH=%s exec %s "$@"\n' \
            "$lib" "$lib" "$lib" "$root/usr/bin/espeak-ng" > "$root/bin/espeak-ng"
        chmod +x "$root/bin/espeak-ng"
        export PATH="$root/bin:$PATH"
        espeak-ng --version || { echo "setup: espeak-ng does not start; libraries it misses:";
            LD_LIBRARY_PATH="$lib:$lib/pulseaudio" ldd "$root/usr/bin/espeak-ng" | grep "not found"; }
    fi

    # The kit's wheels, reinstalled only when the kit changed (a warm machine keeps /tmp).
    local stamp
    stamp=$(cksum < .gpu-kit/MANIFEST.txt 2>/dev/null)
    if [[ -f $SITE/.kit-stamp && "$(cat "$SITE/.kit-stamp")" == "$stamp" ]]; then
        echo "setup: $SITE already holds this kit"
    else
        rm -rf "$SITE"
        PIP_ROOT_USER_ACTION=ignore timeout 150 python3 -m pip install -q --disable-pip-version-check \
            --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu-kit/wheels/*.whl \
            || { echo "setup: pip install of the kit FAILED"; return 1; }
        echo "$stamp" > "$SITE/.kit-stamp"
    fi

    # lorakit and lorakit-textclass: their sources stay on PYTHONPATH (below); what makes them
    # installed distributions, whose entry points (the `lorakit` group) register the plugins, is a
    # dist-info written from each pyproject.toml. No build backend is involved, so the machine's
    # setuptools (which may predate the >=77 that lorakit's pyproject needs) does not matter.
    python3 - "$SITE" . examples/lorakit-textclass <<'PY' || return 1
import sys, tomllib
from pathlib import Path

site = Path(sys.argv[1])
for folder in sys.argv[2:]:
    project = tomllib.loads((Path(folder) / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items()) + "\n"
        for group, points in groups.items() if points))
    (info / "INSTALLER").write_text("bench/gpu_session.sh\n")
    print(f"setup: registered {name} {version} ({', '.join(project.get('entry-points', {}).get('lorakit', {}))})")
PY
    mkdir -p "$SITE/bin"
    printf '#!/bin/sh\nexec python3 -m lorakit "$@"\n' > "$SITE/bin/lorakit"
    chmod +x "$SITE/bin/lorakit"
}

preflight() {
    echo "=== machine"
    command -v nvidia-smi >/dev/null && nvidia-smi || echo "nvidia-smi: not found"
    echo "cpus $(nproc); $(free -g | awk '/^Mem/ {print "memory " $2 " GiB"}'); $(df -h /tmp | awk 'NR==2 {print "/tmp free " $4}')"
    python3 --version; python3 -m pip --version
    echo "=== imports (PYTHONPATH=$PYTHONPATH)"
    python3 - <<'PY'
import importlib, time
import torch

print(f"torch {torch.__version__} cuda {torch.version.cuda}; cuda available {torch.cuda.is_available()}", end="")
if torch.cuda.is_available():
    print(f"; {torch.cuda.get_device_name()} capability {torch.cuda.get_device_capability()} "
          f"bf16 {torch.cuda.is_bf16_supported()}", end="")
print()
# (module, needed): torchcodec is only checked for by coqui-tts (never imported by lorakit; its
# import needs FFmpeg's libraries), bitsandbytes is left out of the kit.
MODULES = [("torchaudio", 1), ("torchvision", 1), ("transformers", 1), ("peft", 1), ("accelerate", 1),
           ("safetensors", 1), ("tokenizers", 1), ("huggingface_hub", 1), ("numpy", 1), ("scipy", 1),
           ("matplotlib", 1), ("numba", 1), ("soundfile", 1), ("soxr", 1), ("librosa", 1), ("TTS", 1),
           ("TTS.tts.models.vits", 1), ("resemblyzer", 1), ("open_clip", 1), ("pycocoevalcap.cider.cider", 1),
           ("pycocoevalcap.bleu.bleu", 1), ("lorakit", 1), ("lorakit_textclass", 1), ("torchcodec", 0),
           ("bitsandbytes", 0)]
bad = 0
for name, needed in MODULES:
    started = time.perf_counter()
    try:
        module = importlib.import_module(name)
        print(f"  ok    {name:26} {str(getattr(module, '__version__', '')):14} "
              f"{getattr(module, '__file__', '')}  {time.perf_counter() - started:.1f}s")
    except Exception as e:  # noqa: BLE001 - a report
        bad += needed
        print(f"  {'FAIL' if needed else 'info'}  {name:26} {type(e).__name__}: {str(e)[:300]}")
import transformers
from packaging.version import Version

if Version(transformers.__version__) < Version("5.23"):
    bad += 1
    print(f"  FAIL  transformers {transformers.__version__} is below lorakit's 5.23: the kit's is not on the path")
raise SystemExit(1 if bad else 0)
PY
    local rc=$?
    echo "=== lorakit plugins"
    python3 -m lorakit plugins
    return $(( rc || $? ))
}

# Builds the real-size bases (CPU) in the background, caption first (bench/gpu.py needs it).
BUILD_PID=""
start_builds() {
    local keys=()
    wants bench && keys+=(caption)
    if wants real; then
        for t in ${REAL_TASKS:-caption voice vqa music}; do [[ " ${keys[*]} " == *" $t "* ]] || keys+=("$t"); done
    fi
    (( ${#keys[@]} )) || return 0
    local csv
    csv=$(IFS=,; echo "${keys[*]}")
    echo "=== building real-size bases in the background: $csv -> $REAL (log real-build.log)"
    OMP_NUM_THREADS=8 nice -n 10 timeout "$BUDGET" python3 bench/real_size.py "$REAL" --only "$csv" \
        > "$OUT/real-build.log" 2>&1 &
    BUILD_PID=$!
}

# wait_for KEY: until the background build has written the base's folder (or has ended).
wait_for() {
    local folder
    folder=$(python3 -c "import sys; sys.path.insert(0, 'bench'); import real_size; print(real_size.MODELS['$1'][0])")
    while [[ ! -d $REAL/$folder ]] && [[ -n $BUILD_PID ]] && kill -0 "$BUILD_PID" 2>/dev/null; do sleep 2; done
    [[ -d $REAL/$folder ]] || echo "(the background build has no $folder; building it here)"
}

# real_one KEY: one short run of the task on the real-size base, with its peak GPU memory.
real_one() {
    local key=$1 task folder data
    read -r folder task data < <(python3 -c "import sys; sys.path.insert(0, 'bench'); import real_size
name, task, data = real_size.MODELS['$key']; print(name, task, data)")
    wait_for "$key"
    [[ -d $REAL/$folder ]] || python3 bench/real_size.py "$REAL" --only "$key" || return 1
    local extra=()
    [[ $key == voice ]] && extra=(--slot p225)   # not "auto": that synthesises in all 109 speaker slots
    [[ $key == caption ]] && extra=(--train_head never)   # LoRA alone, as the benches (real_size.CAPTION_LORA_ONLY)
    local run=/tmp/real-runs/$task
    rm -rf "$run"
    echo "lorakit run $task --base $REAL/$folder --data $data --train.max_steps ${REAL_STEPS:-10} ${extra[*]}"
    REAL_KEY=$key python3 - run "$task" --base "$REAL/$folder" --data "$data" --output "$run" --quiet \
        --train.max_steps "${REAL_STEPS:-10}" --train.eval_every "${REAL_STEPS:-10}" --train.batch_size 8 \
        "${extra[@]}" <<'PY'
import os, runpy, sys, time

import torch

started = time.perf_counter()
sys.argv = ["lorakit", *sys.argv[1:]]
try:
    runpy.run_module("lorakit", run_name="__main__", alter_sys=True)
finally:
    if torch.cuda.is_available():
        print(f"[real] {os.environ['REAL_KEY']}: peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
              f"{time.perf_counter() - started:.0f} s in the process", flush=True)
PY
    local rc=$?
    [[ -f $run/report.json ]] && { echo "report.json:"; cat "$run/report.json"; echo; }
    return $rc
}

main() {
    echo "gpu_session.sh: steps ${STEPS:1:-1}, budget ${BUDGET}s, logs in $OUT"
    local started=$SECONDS
    if setup; then note setup "ok $(( SECONDS - started ))s"; else
        note setup "FAILED (see session.log); the steps below ran anyway"; fi
    export PYTHONPATH="$SITE:$REPO/core:$REPO/plugins:$REPO/examples/lorakit-textclass${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$SITE/bin:$PATH"
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    export MPLBACKEND=Agg LORAKIT_CACHE=/tmp/lorakit-cache NUMBA_CACHE_DIR=/tmp/numba-cache
    export PYTHONUNBUFFERED=1

    started=$SECONDS
    timeout 120 bash -c "$(declare -f preflight); preflight"
    local rc=$?
    note preflight "$( (( rc == 0 )) && echo ok || echo "FAILED rc=$rc (see session.log)" ) $(( SECONDS - started ))s"

    start_builds

    if wants suite; then
        local xdist=()
        if (( ${SUITE_WORKERS:-3} > 1 )) && python3 -c "import xdist" 2>/dev/null; then
            xdist=(-n "${SUITE_WORKERS:-3}")
        fi
        step suite "${SUITE_S:-270}" suite.log python3 -m pytest -m gpu tests/gpu -v -rs --durations=0 \
            -p no:cacheprovider --junitxml="$OUT/suite.xml" "${xdist[@]}"
        SUMMARY[-1]+="  $(grep -E '^=+ .*(passed|failed|error|skipped).* in ' "$OUT/suite.log" 2>/dev/null | tail -1 | tr -d '=')"
    fi
    if wants bench; then
        step bench "${BENCH_S:-150}" bench.log bash -c "$(declare -f wait_for); REAL='$REAL' BUILD_PID='$BUILD_PID'; \
            wait_for caption; python3 bench/gpu.py --cache '$REAL'"
    fi
    if wants real; then
        for key in ${REAL_TASKS:-caption voice vqa music}; do
            step "real:$key" "${REAL_S:-110}" real.log bash -c "$(declare -f wait_for real_one); \
                REAL='$REAL' BUILD_PID='$BUILD_PID'; real_one $key"
            SUMMARY[-1]+="  $(grep -o "\[real\] $key: peak GPU memory [0-9.]* GiB" "$OUT/real.log" 2>/dev/null | tail -1 | sed 's/^.*: //')"
        done
    fi

    if [[ -n $BUILD_PID ]] && kill -0 "$BUILD_PID" 2>/dev/null; then
        kill -- "$BUILD_PID" 2>/dev/null
        echo "(stopped the background build, pid $BUILD_PID)"
    fi
    {
        echo
        echo "=== summary ($(( SECONDS - T0 ))s of the ${BUDGET}s budget; logs in $OUT)"
        printf '%s\n' "${SUMMARY[@]}"
    } | tee "$OUT/summary.txt"
}

main 2>&1 | tee "$OUT/session.log"
