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
