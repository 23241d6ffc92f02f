"""`lorakit serve` as a user starts it: a process that serves, and refusals."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from cli_failure import fails_cleanly, one_error
from lorakit.serving.background import _free_port


@pytest.mark.slow
def test_the_command_serves_the_runs_of_a_folder(served):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "lorakit", "serve", str(served), "--port", str(port),
                               "--queue-size", "4", "--max-upload", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "lorakit serve did not answer within 2 minutes"
                time.sleep(0.5)
        assert health["queue_size"] == 4
        assert {b["task"] for b in health["bases"]} == {"voice-clone", "caption", "music-style"}
        speech = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", timeout=60,
                            json={"model": "tts-1", "voice": "calm", "input": "Hi.", "response_format": "wav"})
        assert speech.status_code == 200 and speech.content[:4] == b"RIFF"
        upload = httpx.post(f"http://127.0.0.1:{port}/v1/captions", timeout=60,
                            files={"image": ("scan.dcm", b"A" * (2 * 1024 * 1024), "application/dicom")})
        assert upload.status_code == 413 and "over 1 MB" in upload.json()["error"]["message"]
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    caption_line = next(line for line in output.splitlines() if line.startswith("caption on demo:"))
    assert "caption-a" in caption_line and "styles/caption-b" in caption_line
    voice_line = next(line for line in output.splitlines() if line.startswith("voice-clone on demo:"))
    assert "calm" in voice_line and "its voices: " in voice_line and "klatt" in voice_line  # names a client can send
    assert "skipped" in output and "broken" in output  # the unreadable folder is reported, not fatal


def test_refusals_are_one_line(tmp_path):
    fails_cleanly("serve", names=("nothing to serve",))
    fails_cleanly("serve", tmp_path / "missing", names=("missing", "no such folder"))
    fails_cleanly("serve", "--base", "demo", names=("TASK=BASE",))
    fails_cleanly("serve", "--base", "caption=demo", "--port", "70000", names=("--port 70000", "1 to 65535"))


def test_a_port_in_use_is_said_before_the_bases_load():
    """It was said by uvicorn after every base had loaded (minutes for real
    voices), under a line announcing the server, and the exit was 0."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "lorakit", "serve", "--base", "caption=demo", "--port", str(port)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    one_error(done, (f"127.0.0.1:{port}", f"port {port} is in use", "another --port"))
    assert "loading bases" not in done.stdout + done.stderr and "serving at" not in done.stdout + done.stderr
