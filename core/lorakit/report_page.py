"""A run's report as one HTML page: what was trained, base vs adapter, the
curves of the log, and the samples to listen to and look at.

``lorakit report RUN`` writes it as a self-contained file (media embedded as
data URIs) to share; ``lorakit serve`` shows the same page with media linked
(``embed=False``: ``files/<path>`` beside the page's own address). No
script and no external address: the page opens offline, anywhere.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from lorakit.errors import ConfigError

#: Samples shown per side, and the largest file embedded.
MAX_SAMPLES, MAX_EMBEDDED_BYTES = 24, 5 * 1024 * 1024
GENERATOR = "lorakit report"
_EMPTY_CELL = "<div class='sample none'></div>"  # keeps base and adapter rows level where one side has nothing
_MEDIA = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".png": "image/png",
          ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d232b; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border-bottom: 1px solid #ddd; padding: 4px 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #1a7f37; } .worse { color: #b00020; }
.samples { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 16px; align-items: start; }
.samples h3 { margin: 4px 0; } .sample .side { display: none; }
.sample { margin: 6px 0; } .sample img { max-width: 100%; } .sample .file { font-size: 12px; color: #555; }
pre { white-space: pre-wrap; background: #f4f4f4; padding: 6px; }
svg.curve { background: #fafafa; border: 1px solid #ddd; margin: 4px 8px 4px 0; max-width: 100%; height: auto; }
#facts td { overflow-wrap: anywhere; } .scroll { overflow-x: auto; } audio { max-width: 100%; }
@media (max-width: 640px) { body { margin: 12px; } .samples { grid-template-columns: 1fr; }
  .samples h3 { display: none; } .sample .side { display: inline; } }
"""


def run_report_html(run_dir: str | Path, embed: bool = True) -> str:
    """The report page of ``run_dir`` (a folder ``lorakit run`` made)."""
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / "adapter" / "lorakit.json")
    if manifest is None:
        raise ConfigError(f"{run_dir} is not a finished run: no adapter/lorakit.json in it; pass a folder "
                          "`lorakit run` wrote (its adapter is saved when training ends)")
    report = _read_json(run_dir / "report.json") or manifest.get("metrics") or {}
    log = _read_log(run_dir / "log.jsonl")
    title = f"{run_dir.name}: {manifest.get('task', '?')} on {manifest.get('base', '?')}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"  # a shared link opens on phones
             f"<meta name='generator' content='{GENERATOR}'>"  # a later report may replace this file
             f"<title>{_e(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{_e(title)}</h1>",
             _facts(manifest), _metrics(report, _directions(manifest.get("task", ""))), _curves(log),
             _samples(run_dir, embed), "</body></html>"]
    return "\n".join(parts)


def is_report(path: Path) -> bool:
    """Whether ``path`` is a report page lorakit wrote (one that may be written over)."""
    with open(path, "rb") as handle:
        return f"<meta name='generator' content='{GENERATOR}'>".encode() in handle.read(4096)


def _facts(manifest: dict[str, Any]) -> str:
    training = manifest.get("training") or {}
    rows = [("task", manifest.get("task")), ("base", manifest.get("base")),
            ("base fingerprint", manifest.get("base_fingerprint")),
            ("LoRA", f"r {manifest.get('r')}, alpha {manifest.get('alpha')}, on {manifest.get('targets')}"),
            ("trained fully", ", ".join(manifest.get("modules_to_save") or []) or "nothing"),
            ("steps", f"{training.get('steps')} (best checkpoint: step {training.get('best_step')}, by "
                      f"{training.get('metric')}{', stopped early' if training.get('stopped_early') else ''})"),
            ("trigger words", ", ".join(manifest.get("trigger_words") or []) or "none"),
            ("data", _plain(manifest.get("data")) or "not recorded"), ("made", manifest.get("created"))]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<h2>Adapter</h2><table id='facts'>{body}</table>"


def _plain(value: Any) -> str:
    """A summary the data step recorded, as words: ``clips 40, splits: train 30, test 6; rejected: none``."""
    if isinstance(value, dict):
        flat = [f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items() if not isinstance(v, (dict, list))]
        nested = [f"{k.replace('_', ' ')}: {_plain(v) or 'none'}" for k, v in value.items()
                  if isinstance(v, (dict, list))]
        return "; ".join(filter(None, [", ".join(flat), *nested]))
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def _metrics(report: dict[str, Any], directions: dict[str, str]) -> str:
    if not report:
        return "<h2>Base vs adapter</h2><p id='metrics'>This run was trained without evaluation.</p>"
    rows = []
    for split, pair in report.items():
        if not isinstance(pair, dict) or "adapter" not in pair:
            continue
        for metric, value in pair["adapter"].items():
            base = pair.get("base", {}).get(metric)
            change = "" if base is None else value - base
            kind = ""
            if base is not None and metric in directions and change != 0:
                kind = "better" if (change > 0) == (directions[metric] == "max") else "worse"
            rows.append(f"<tr><td>{_e(split)} ({_e(pair.get('examples', '?'))})</td><td>{_e(metric)}</td>"
                        f"<td class='num'>{_number(base)}</td><td class='num'>{_number(value)}</td>"
                        f"<td class='num {kind}'>{_number(change, signed=True)}</td></tr>")
    head = "<tr><th>split</th><th>metric</th><th>base</th><th>adapter</th><th>change</th></tr>"
    return f"<h2>Base vs adapter</h2><div class='scroll'><table id='metrics'>{head}{''.join(rows)}</table></div>"


def _curves(log: list[dict[str, Any]]) -> str:
    """One line chart per logged number: training loss, validation metrics."""
    series: dict[str, list[tuple[float, float]]] = {}
    for record in log:
        prefix = "" if record.get("event") == "train" else f"{record.get('event')} "
        for key, value in record.items():
            learning_rate = key == "lr" or key.startswith("lr_")
            if key in ("event", "step", "time", "epoch") or learning_rate or not isinstance(value, (int, float)):
                continue
            if isinstance(value, bool) or value != value:  # NaN: not drawable
                continue
            series.setdefault(prefix + key, []).append((float(record.get("step", 0)), float(value)))
    if not series:
        return "<h2>Curves</h2><p>No training log.</p>"
    charts = "".join(_chart(name, points) for name, points in series.items())
    return f"<h2>Curves</h2><div id='curves'>{charts}</div>"


def _chart(name: str, points: list[tuple[float, float]], width: int = 320, height: int = 160) -> str:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 28

    def at(x: float, y: float) -> str:
        px = pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)
        py = height - pad - (y - y0) / ((y1 - y0) or 1) * (height - 2 * pad)
        return f"{px:.1f},{py:.1f}"

    line = " ".join(at(x, y) for x, y in points)
    return (f"<svg class='curve' data-name='{_e(name)}' width='{width}' height='{height}' "
            f"xmlns='http://www.w3.org/2000/svg'><text x='{pad}' y='16' font-size='12'>{_e(name)}</text>"
            f"<text x='2' y='{pad + 4}' font-size='10'>{_number(y1)}</text>"
            f"<text x='2' y='{height - pad}' font-size='10'>{_number(y0)}</text>"
            f"<text x='{width - pad - 30}' y='{height - 6}' font-size='10'>step {int(x1)}</text>"
            f"<polyline fill='none' stroke='#1d3557' stroke-width='1.5' points='{line}'/></svg>")


def _samples(run_dir: Path, embed: bool) -> str:
    """Base and adapter side by side, one row per sample: what each said of
    one picture or sentence level with the other, however long either is."""
    sides = {side: run_dir / "samples" / side for side in ("base", "adapter")}
    if not any(folder.is_dir() for folder in sides.values()):
        return "<h2>Samples</h2><p>No samples were written.</p>"
    groups = {}
    for side, folder in sides.items():
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        groups[side] = {_sample_name(group): group for group in _by_number(files)[:MAX_SAMPLES]}
    cells = [f"<h3>{side}</h3>" for side in sides]
    numbered_first = sorted({*groups["base"], *groups["adapter"]},
                            key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0, name))
    for name in numbered_first:
        for side in sides:
            group = groups[side].get(name)
            cells.append(_sample(run_dir, side, name, group, embed) if group else _EMPTY_CELL)
    return f"<h2>Samples</h2><div class='samples'>{''.join(cells)}</div>"


def _by_number(files: list[Path]) -> list[list[Path]]:
    """Files of one sample together: ``01.jpg`` and ``01.txt`` (a picture and
    what the model said of it), ``01.wav``, ``01.png`` and ``01-real.wav``;
    pictures and sounds before texts. Files not named by a number stand alone."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        number = path.stem.split("-")[0]
        groups.setdefault(number if number.isdigit() else path.name, []).append(path)
    return [sorted(group, key=lambda p: (p.suffix.lower() not in _MEDIA, "-" in p.stem, p.name))
            for group in groups.values()]


def _sample_name(files: list[Path]) -> str:
    number = files[0].stem.split("-")[0]
    return number if number.isdigit() else files[0].name


def _sample(run_dir: Path, side: str, name: str, files: list[Path], embed: bool) -> str:
    """One sample: its name (and side, said where the columns stack), then
    each file's player, picture or text."""
    shown = [_shown(run_dir, path, embed) for path in files]
    if not any(shown):
        return _EMPTY_CELL
    kind = " text" if len(files) == 1 and files[0].suffix.lower() not in _MEDIA else ""
    return (f"<div class='sample{kind}' data-side='{side}'><div>{_e(name)}<span class='side'> {side}</span></div>"
            f"{''.join(shown)}</div>")


def _shown(run_dir: Path, path: Path, embed: bool) -> str:
    """A file as the page shows it: audio player, picture, or text."""
    kind = _MEDIA.get(path.suffix.lower())
    if kind is None:
        if path.suffix.lower() in (".txt", ".jsonl", ".json", ".csv"):
            return f"<pre>{_e(path.read_text(encoding='utf-8', errors='replace')[:20_000])}</pre>"
        return ""
    if embed:
        if path.stat().st_size > MAX_EMBEDDED_BYTES:
            return f"<em>{_e(path.name)} too large to embed ({path.stat().st_size:,} bytes)</em>"
        source = f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"
    else:
        source = "files/" + path.relative_to(run_dir).as_posix()
    if kind.startswith("audio/"):  # named: a sample may hold two (the model's and the real recording)
        return (f"<div class='file'>{_e(path.name)}</div>"
                f"<audio class='sample-audio' controls preload='none' src='{_e(source)}'></audio>")
    return f"<img class='sample-image' alt='{_e(path.name)}' src='{_e(source)}'>"


def _directions(task: str) -> dict[str, str]:
    """The task's metric directions ("max"/"min"), optional ones included;
    none when its plugin is missing."""
    from lorakit.errors import LorakitError
    from lorakit.plugins import get_host

    try:
        return get_host().task(task).metric_directions()
    except LorakitError:
        return {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line of a killed run
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
