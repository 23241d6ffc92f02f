"""Small things the serving tests share."""

import contextlib
import io
import json
import shutil

#: The key of the ``keyed`` server (conftest): characters a cookie must carry encoded.
API_KEY = "k3y-for tests;=%"


def png_bytes(color=(200, 40, 40), size=(32, 32)) -> bytes:
    """A PNG file's bytes: a plain square with a darker stripe."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle((0, size[1] // 2, size[0], size[1] // 2 + 4), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rewrite_adapter(run_dir, source_run, **manifest_changes):
    """Replace a run's adapter with ``source_run``'s (its manifest changed by
    ``manifest_changes``) as a resumed run does: a new folder renamed into place."""
    new, old = run_dir.parent / f".{run_dir.name}.new", run_dir.parent / f".{run_dir.name}.old"
    shutil.copytree(source_run / "adapter", new)
    manifest = json.loads((new / "lorakit.json").read_text())
    (new / "lorakit.json").write_text(json.dumps({**manifest, **manifest_changes}))
    (run_dir / "adapter").rename(old)
    new.rename(run_dir / "adapter")
    shutil.rmtree(old)


def probe(service, task_name, mix):
    """The task's probe output on the served base with ``mix`` active, as a request would run it."""
    import torch

    worker = service.workers[(task_name, "demo")]
    task = worker.loaded.task_for(mix, {})
    with worker.loaded.mixed(mix) as model, torch.inference_mode():
        return task.probe(worker.loaded.base, model).float()


@contextlib.contextmanager
def another_server(service, tls=None, **app_options):
    """A second server (``create_app(service, **app_options)``) over the shared
    service while the block runs; the batch metrics go back to the main
    server's app after it."""
    from lorakit.serving.app import create_app
    from lorakit.serving.background import BackgroundServer

    hooks = service.on_batch, {key: worker.on_batch for key, worker in service.workers.items()}
    server = BackgroundServer(create_app(service, **app_options), tls=tls)
    try:
        yield server
    finally:
        server.stop()
        service.on_batch = hooks[0]
        for key, hook in hooks[1].items():
            service.workers[key].on_batch = hook


@contextlib.contextmanager
def voice_found_behind_a_held_job(live, service, served, monkeypatch):
    """A new voice run, ``new-voice``, found while the voice base's worker is
    held in a speech job, so that the voice's load waits behind that job.
    Yields the voice's name and a function that lets the job go; at the end
    the voice is removed and the server forgets it."""
    import threading

    import httpx

    worker = service.workers[("voice-clone", "demo")]
    started, release = threading.Event(), threading.Event()
    predict = worker._predict

    def held(batch):
        started.set()
        release.wait(60)
        return predict(batch)

    monkeypatch.setattr(worker, "_predict", held)
    monkeypatch.setattr(service, "rescan_seconds", 0.0)
    speech = dict(model="tts-1", voice="kauko", input="A long job.", response_format="wav")
    busy = threading.Thread(target=lambda: httpx.post(f"{live.url}/v1/audio/speech", json=speech, timeout=90))
    busy.start()

    def let_go():
        release.set()
        busy.join()

    try:
        assert started.wait(30)
        shutil.copytree(served / "calm", served / "new-voice")
        yield "new-voice", let_go
    finally:  # the other tests list the session's voices
        let_go()
        shutil.rmtree(served / "new-voice", ignore_errors=True)
        service.refresh(force=True)
