"""A folder of served runs (random adapters on the demo bases: the server's
behaviour, not learning, is under test here) and a live server on 127.0.0.1."""

import copy
import dataclasses
import json
import socket
import threading
import time

import pytest
import torch

# Targets small enough to make adapters in a moment, big enough to change outputs.
TARGETS = {"caption": ["query", "value"], "voice-clone": None}


def make_adapter(task_name, base_name, run_dir, seed, scale=0.05, targets=None, options=None):
    """A run folder whose adapter has random LoRA B (so it changes outputs),
    saved as runs save them, with a report.json."""
    from lorakit.apply import load_base
    from lorakit.artifact import Manifest, save_adapter
    from lorakit.config import LoraSettings, RunConfig
    from lorakit.fingerprints import base_fingerprint
    from lorakit.lora import inject
    from lorakit.runs import make_task

    task = make_task(RunConfig(task=task_name, options=options or {}))
    base = load_base(task, base_name)
    printed = base_fingerprint(base, task.name)
    task.prepare_base(base, None)
    targets = targets or TARGETS.get(task_name) or task.lora_targets
    model = inject(copy.deepcopy(base.model), LoraSettings(r=4, alpha=8), targets, [])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)
    metric = next(iter(task.metrics))
    report = {"test": {"examples": 4, "base": {metric: 0.5}, "adapter": {metric: 0.7}}}
    manifest = Manifest(task=task.name, base=base.name, base_fingerprint=printed, targets=targets, r=4, alpha=8,
                        data={"examples": 4}, metrics=report, options=dataclasses.asdict(task.options))
    save_adapter(model, run_dir / "adapter", manifest)
    (run_dir / "report.json").write_text(json.dumps(report))
    return run_dir


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """Two voice runs, two caption runs (one in a subfolder), one broken folder."""
    root = tmp_path_factory.mktemp("served")
    make_adapter("voice-clone", "demo", root / "kauko", 1)
    make_adapter("voice-clone", "demo", root / "calm", 2)
    make_adapter("caption", "demo", root / "caption-a", 3, scale=0.3)
    make_adapter("caption", "demo", root / "styles" / "caption-b", 4, scale=0.3)
    (root / "broken" / "adapter").mkdir(parents=True)
    (root / "broken" / "adapter" / "adapter_config.json").write_text("{not json")
    (root / "broken" / "adapter" / "lorakit.json").write_text("{}")
    return root


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` from a thread, stopped at the end."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def service(served):
    from lorakit.serving.service import Service

    service = Service([served], [("voice-clone", "demo"), ("vqa", "demo"), ("music-style", "demo")], queue_size=8,
                      max_batch=8)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def live(service):
    from lorakit.serving.app import create_app

    server = LiveServer(create_app(service))
    yield server
    server.stop()
