"""The plugin API boundary: plugins import lorakit.api (and lorakit.testing in
their tests), never the core's internals; the API's names exist and cost no
torch import."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lorakit
import lorakit.api

REPO = Path(__file__).resolve().parents[2]
#: Code written as a third party would write it: the built-in plugins, the example plugin, the toy task.
PLUGIN_CODE = [REPO / "plugins", REPO / "examples" / "lorakit-textclass" / "lorakit_textclass",
               REPO / "tests" / "toy_plugin.py"]
ALLOWED_MODULES = {"lorakit", "lorakit.api", "lorakit.testing"}


def plugin_files() -> list[Path]:
    files = []
    for root in PLUGIN_CODE:
        files += [root] if root.is_file() else sorted(p for p in root.rglob("*.py") if "tests" not in p.parts)
    return files


def core_imports(path: Path, root: Path = REPO) -> list[str]:
    """``file:line: what`` for every import of lorakit other than the plugin API."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if _internal(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _internal(node.module):
                found.append(f"{where}: from {node.module} import ...")
            elif node.module == "lorakit":
                # `from lorakit import options` reaches a module, not a re-exported name.
                found += [f"{where}: from lorakit import {a.name}" for a in node.names
                          if a.name not in lorakit.__all__ and f"lorakit.{a.name}" not in ALLOWED_MODULES]
        elif isinstance(node, ast.Call) and _imports_by_name(node):
            found.append(f"{where}: {ast.unparse(node)}")
    return found


def _internal(module: str) -> bool:
    return (module == "lorakit" or module.startswith("lorakit.")) and module not in ALLOWED_MODULES


def _imports_by_name(call: ast.Call) -> bool:
    """``importlib.import_module("lorakit.x")`` / ``__import__("lorakit.x")``."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name not in ("import_module", "__import__") or not call.args:
        return False
    first = call.args[0]
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and _internal(first.value)


def test_the_scan_finds_the_plugins():
    files = {p.relative_to(REPO).as_posix() for p in plugin_files()}
    for expected in ("plugins/lorakit_caption/task.py", "plugins/lorakit_voice/task.py",
                     "examples/lorakit-textclass/lorakit_textclass/task.py", "tests/toy_plugin.py"):
        assert expected in files


def test_the_scan_catches_every_way_of_reaching_the_core(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import lorakit.options\nfrom lorakit.data.files import read_jsonl\nfrom lorakit import errors\n"
                      "import importlib\nimportlib.import_module('lorakit.runs')\n"
                      "from lorakit.api import Task\nfrom lorakit import hookimpl\nimport lorakit\n"
                      "from lorakit import testing\nimport lorakit_caption.data\n")
    found = [line.split(": ", 1)[1] for line in core_imports(sample, tmp_path)]
    assert found == ["import lorakit.options", "from lorakit.data.files import ...", "from lorakit import errors",
                     "importlib.import_module('lorakit.runs')"]


@pytest.mark.parametrize("root", PLUGIN_CODE, ids=lambda p: p.name)
def test_plugins_import_only_the_plugin_api(root):
    files = [root] if root.is_file() else [p for p in plugin_files() if root in p.parents]
    found = [line for path in files for line in core_imports(path)]
    assert not found, ("plugins may import lorakit, lorakit.api and lorakit.testing only; if a plugin needs more, "
                       "add it to lorakit.api. Found:\n" + "\n".join(found))


def test_every_api_name_exists():
    missing = [name for name in lorakit.api.__all__ if not hasattr(lorakit.api, name)]
    assert not missing
    assert len(set(lorakit.api.__all__)) == len(lorakit.api.__all__), "a name is listed twice"
    assert lorakit.api.CONTRACT_VERSION == lorakit.CONTRACT_VERSION
    for name in lorakit.__all__:
        assert name == "__version__" or name in lorakit.api.__all__, f"lorakit.{name} is not in lorakit.api"


def test_the_plugin_guide_lists_every_api_name_and_each_has_a_docstring():
    """docs/plugins.md's table is where plugin authors look; each name's help() has the rest."""
    import re

    guide = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    table = guide[guide.index("| group | names |"):guide.index("Every name has a docstring")]
    listed = set(re.findall(r"`([A-Za-z_]\w*)", table))
    missing = sorted(set(lorakit.api.__all__) - listed)
    assert not missing, f"add these to docs/plugins.md's API table: {missing}"
    undocumented = [name for name in lorakit.api.__all__
                    if callable(getattr(lorakit.api, name)) and not getattr(lorakit.api, name).__doc__]
    assert not undocumented


def test_importing_the_api_does_not_import_torch():
    code = "import sys, lorakit.api; print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
