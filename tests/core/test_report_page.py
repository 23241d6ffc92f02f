"""`lorakit report RUN`: one self-contained HTML page of a finished run."""

import base64
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from cli_failure import fails_cleanly
from lorakit import runs
from lorakit.cli import cli
from lorakit.report_page import run_report_html


@pytest.fixture
def run_dir(toy_host, toy_data, tmp_path):
    """A toy run (validation every 2 steps) with a wav, a PNG and a hostile caption among its samples."""
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "run"), "--epochs", "3",
                                      "--train.eval_every", "2"])
    run = runs.run(config, show_progress=False).run_dir
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800, dtype="float32"), 8000, format="WAV")
    (run / "samples" / "adapter" / "hello.wav").write_bytes(buffer.getvalue())
    Image.new("RGB", (8, 8), (200, 0, 0)).save(run / "samples" / "base" / "mel.png")
    (run / "samples" / "adapter" / "captions.txt").write_text("a <script>alert(1)</script> cat\n")
    return run


def test_the_page_holds_metrics_curves_and_embedded_samples(run_dir):
    page = run_report_html(run_dir)
    report = json.loads((run_dir / "report.json").read_text())
    table = page[page.index("id='metrics'"):page.index("</table>", page.index("id='metrics'"))]
    assert f"{report['test']['base']['mse']:.4f}" in table and f"{report['test']['adapter']['mse']:.4f}" in table
    change = report["test"]["adapter"]["mse"] - report["test"]["base"]["mse"]
    assert ("better" if change < 0 else "worse") in table  # mse: lower is better
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train_steps = [r for r in log if r["event"] == "train" and "loss" in r]
    loss_chart = re.search(r"<svg class='curve' data-name='loss'.*?points='([^']*)'", page).group(1)
    assert len(loss_chart.split()) == len(train_steps) > 1
    assert "data-name='validation val_loss'" in page or "data-name='validation mse'" in page
    audio = re.search(r"src='data:audio/wav;base64,([^']*)'", page).group(1)
    assert base64.b64decode(audio) == (run_dir / "samples" / "adapter" / "hello.wav").read_bytes()
    assert "src='data:image/png;base64," in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_metric_the_task_returns_only_under_an_option_is_coloured_too(run_dir):
    """An optional metric (the toy's mae, with --report_mae; caption's
    clip_score, with --clip) is not demanded of every run, yet its change is
    better or worse as a declared one's is."""
    report = json.loads((run_dir / "report.json").read_text())
    report["test"]["base"].update(mae=0.25, unknown=0.5)
    report["test"]["adapter"].update(mae=0.5, unknown=0.25)
    (run_dir / "report.json").write_text(json.dumps(report))
    rows = {re.search(r"<td>(\w+)</td>", row).group(1): row
            for row in run_report_html(run_dir).split("<tr>") if row.startswith("<td>")}
    assert "class='num worse'>+0.2500" in rows["mae"]
    assert "class='num '>-0.2500" in rows["unknown"]  # no direction known: not coloured


def test_the_files_of_one_sample_are_shown_together(run_dir):
    """A picture and what the model said of it (01.jpg + 01.txt), a voice's
    clip, its spectrogram and the real recording (02.*, 02-real.wav)."""
    samples = run_dir / "samples" / "adapter"
    Image.new("RGB", (8, 8), (0, 90, 200)).save(samples / "01.jpg")
    (samples / "01.txt").write_text("Q: what is it?\nA: a blue square\n")
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800, dtype="float32"), 8000, format="WAV")
    for name in ("02.wav", "02-real.wav"):
        (samples / name).write_bytes(buffer.getvalue())
    Image.new("RGB", (8, 8)).save(samples / "02.png")
    page = run_report_html(run_dir, embed=False)
    first = _cell(page, "01", "adapter")
    assert first.index("src='files/samples/adapter/01.jpg'") < first.index("<pre>Q: what is it?\nA: a blue square")
    second = _cell(page, "02", "adapter")
    assert [m for m in re.findall(r"samples/adapter/([\w.-]+)'", second)] == ["02.png", "02.wav", "02-real.wav"]
    assert "<div class='file'>02-real.wav</div>" in second
    (samples / "notes-a.txt").write_text("a")
    (samples / "notes-b.txt").write_text("b")  # not numbered: each stands alone, under its own name
    page = run_report_html(run_dir, embed=False)
    assert "<pre>a</pre>" in _cell(page, "notes-a.txt", "adapter") and "<pre>b</pre>" in _cell(page, "notes-b.txt",
                                                                                                "adapter")


def _cell(page: str, name: str, side: str) -> str:
    """What the page shows of sample ``name`` on ``side``."""
    start = re.search(rf"<div class='sample(?: \w+)?' data-side='{side}'><div>{re.escape(name)}<span", page).end()
    end = page.find("<div class='sample", start)
    return page[start:end if end > 0 else len(page)]


def test_base_and_adapter_samples_stand_in_rows(run_dir):
    """Sample NN of the base beside sample NN of the adapter, however long
    either side's texts: one grid cell each, in row order; a sample one side
    lacks leaves its cell empty."""
    for side, said in (("base", "a large a large a large\n" * 6), ("adapter", "green star")):
        for number in ("01", "02"):
            (run_dir / "samples" / side / f"{number}.txt").write_text(said)
    (run_dir / "samples" / "adapter" / "03.txt").write_text("only the adapter's")
    page = run_report_html(run_dir, embed=False)
    grid = page[page.index("<div class='samples'>"):]
    cells = re.findall(r"<div class='sample(?: \w+)?'(?: data-side='(\w+)'><div>([\w.-]+)<span)?", grid)
    rows = [cells[i:i + 2] for i in range(0, len(cells), 2)]
    assert rows[:3] == [[("base", "01"), ("adapter", "01")], [("base", "02"), ("adapter", "02")],
                        [("", ""), ("adapter", "03")]]
    assert "<h3>base</h3><h3>adapter</h3>" in grid


def test_the_data_summary_reads_as_words(run_dir):
    page = run_report_html(run_dir)
    data = json.loads((run_dir / "adapter" / "lorakit.json").read_text())["data"]
    row = re.search(r"<tr><th>data</th><td>(.*?)</td></tr>", page).group(1)
    splits = ", ".join(f"{name} {count}" for name, count in data["splits"].items())
    assert f"splits: {splits}" in row and "{" not in row and "&quot;" not in row


def test_served_pages_link_media_instead(run_dir):
    page = run_report_html(run_dir, embed=False)
    assert "src='files/samples/adapter/hello.wav'" in page and "data:audio" not in page


def test_the_command_writes_the_file_and_refuses_a_folder_that_is_no_run(run_dir, tmp_path, toy_host):
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").read_text() == run_report_html(run_dir)
    fails_cleanly("report", tmp_path, names=(str(tmp_path), "not a finished run"))
    fails_cleanly("report", tmp_path / "nope", names=("no such folder",))
    (run_dir / "report.html").write_text("<html>a report from before reports were marked</html>")
    assert CliRunner().invoke(cli, ["report", str(run_dir)]).exit_code == 0  # the run's own page is rewritten


def test_out_writes_over_a_report_and_nothing_else(run_dir, tmp_path, toy_host):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    fails_cleanly("report", run_dir, "--out", notes, names=(str(notes), "is not a report lorakit wrote"))
    assert notes.read_text() == "# my notes\n"
    shared = tmp_path / "shared.html"
    for _ in range(2):  # the second writes over the first
        result = CliRunner().invoke(cli, ["report", str(run_dir), "--out", str(shared)])
        assert result.exit_code == 0 and shared.read_text() == run_report_html(run_dir), result.output
