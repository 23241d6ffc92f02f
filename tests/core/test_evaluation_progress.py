"""A run's last minutes (base and adapter evaluated, samples written) and
`lorakit evaluate` show a bar, filled when the work is done."""

import contextlib

from lorakit import runs


def _recorded_bars(monkeypatch) -> list[dict]:
    bars: list[dict] = []

    @contextlib.contextmanager
    def work_progress(description, total, enabled=True):
        bar = {"description": description, "total": total, "enabled": enabled, "done": 0}
        bars.append(bar)
        yield lambda n=1: bar.update(done=bar["done"] + n)

    monkeypatch.setattr(runs, "work_progress", work_progress)
    return bars


def test_the_evaluation_after_training_and_lorakit_evaluate_fill_a_bar(toy_host, toy_data, tmp_path, monkeypatch):
    bars = _recorded_bars(monkeypatch)
    config = runs.load_config("toy", ["--data", str(toy_data), "--retain", str(toy_data), "--epochs", "1",
                                      "--output", str(tmp_path / "run")])
    runs.run(config, show_progress=True)
    # Base and adapter on the test and retain sets, then the samples of each.
    assert bars == [{"description": "evaluating base and adapter", "total": 6, "enabled": True, "done": 6}]
    bars.clear()
    runs.evaluate_run(tmp_path / "run")
    # No samples here; shown where a person watches (lorakit evaluate), not in library calls.
    assert bars == [{"description": "evaluating base and adapter", "total": 4, "enabled": None, "done": 4}]
    bars.clear()
    runs.run(runs.load_config("toy", ["--data", str(toy_data), "--epochs", "1", "--output", str(tmp_path / "quiet")]),
             show_progress=False)
    assert [bar["enabled"] for bar in bars] == [False]
