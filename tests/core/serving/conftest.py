"""A folder of served runs (random adapters on the demo bases: the server's
behaviour, not learning, is under test here) and a live server on 127.0.0.1."""

import pytest

# Targets small enough to make adapters in a moment, big enough to change outputs.
CAPTION_TARGETS = ["query", "value"]


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """Two voice runs, two caption runs (one in a subfolder), two music runs, one broken folder."""
    root = tmp_path_factory.mktemp("served")
    from lorakit.testing import random_adapter

    random_adapter("voice-clone", "demo", root / "kauko", 1)
    random_adapter("voice-clone", "demo", root / "calm", 2)
    random_adapter("caption", "demo", root / "caption-a", 3, scale=0.3, targets=CAPTION_TARGETS)
    random_adapter("caption", "demo", root / "styles" / "caption-b", 4, scale=0.3, targets=CAPTION_TARGETS)
    random_adapter("music-style", "demo", root / "tune-a", 5, scale=0.2)
    random_adapter("music-style", "demo", root / "tune-b", 6, scale=0.2)
    (root / "broken" / "adapter").mkdir(parents=True)
    (root / "broken" / "adapter" / "adapter_config.json").write_text("{not json")
    (root / "broken" / "adapter" / "lorakit.json").write_text("{}")
    return root


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
    from lorakit.serving.background import BackgroundServer

    server = BackgroundServer(create_app(service))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed(service):
    """A second server over the same service that answers only requests carrying ``API_KEY``."""
    from serving_support import API_KEY, another_server

    with another_server(service, api_key=API_KEY) as server:
        yield server
