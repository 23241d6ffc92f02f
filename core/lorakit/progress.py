"""Progress bars and notes on the terminal (rich), off in worker processes and when asked."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from rich.console import Console
from rich.markup import escape  # noqa: F401  (re-exported: user text inside markup)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)
#: Whether ``work_progress(..., enabled=None)`` draws: on within a command a
#: person watches (``lorakit predict``), off in the server and library calls.
_WATCHED = contextvars.ContextVar("lorakit_watched", default=False)


@contextlib.contextmanager
def watched() -> Iterator[None]:
    """Within: bars asked for with ``enabled=None`` show."""
    token = _WATCHED.set(True)
    try:
        yield
    finally:
        _WATCHED.reset(token)


class _Bar:
    def __init__(self, progress: Progress | None, task_id: int | None):
        self._progress, self._task = progress, task_id

    def advance(self, losses: dict[str, float] | None = None) -> None:
        """One step done; ``losses`` (at log steps) replace the ones shown."""
        if self._progress is None:
            return
        if losses is None:
            self._progress.update(self._task, advance=1)
            return
        text = " ".join(f"{k}={v:.4f}" if k != "main" else f"loss={v:.4f}" for k, v in losses.items())
        self._progress.update(self._task, advance=1, losses=text)

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"  [dim]{text}[/dim]")


@contextlib.contextmanager
def training_progress(total: int, done: int = 0, enabled: bool = True) -> Iterator[_Bar]:
    """A bar over optimizer steps showing the latest losses, elapsed time and ETA."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task_id = progress.add_task("train", total=total, completed=done, losses="")
        yield _Bar(progress, task_id)


@contextlib.contextmanager
def work_progress(description: str, total: int, enabled: bool | None = True) -> Iterator[callable]:
    """A bar for other long work (evaluation, prediction); yields ``advance(n)``.
    ``enabled=None``: only where a person watches (``watched()``), as a task's
    ``predict`` wants it: on for ``lorakit predict``, off in the server."""
    if enabled is None:
        enabled = _WATCHED.get()
    if not enabled:
        yield lambda n=1: None
        return
    with Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task_id = progress.add_task(description, total=total)
        yield lambda n=1: progress.update(task_id, advance=n)


@contextlib.contextmanager
def rate_progress(description: str, total: int, unit: str = "items", enabled: bool = True) -> Iterator[callable]:
    """A bar for long batch work showing items/s and the time left; yields ``advance(n)``."""
    if not enabled:
        yield lambda n=1: None
        return
    speed = TextColumn(f"{{task.fields[rate]}} {unit}/s")
    with Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), speed,
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as progress:
        task_id = progress.add_task(description, total=total, rate="-")

        def advance(n: int = 1) -> None:
            progress.update(task_id, advance=n)
            rate = progress.tasks[0].speed
            progress.update(task_id, rate=f"{rate:.1f}" if rate else "-")

        yield advance
