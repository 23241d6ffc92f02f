"""`lorakit serve` as a user starts it: a process that serves, and refusals."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from certificates import self_signed
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
        rebound = httpx.get(f"http://127.0.0.1:{port}/runs", headers={"Host": f"rebind.example:{port}"}, timeout=5)
        assert rebound.status_code == 403  # keyless on this machine: loopback names only
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


@pytest.mark.parametrize("base, names", [
    pytest.param("nosuchtask=demo", ("--base nosuchtask=demo", "unknown task 'nosuchtask'", "voice-clone"),
                 marks=pytest.mark.slow),
    ("voice-clone=no/such/voice", ("--base voice-clone=no/such/voice: no such folder",)),
])
def test_a_base_named_on_the_command_line_that_cannot_load_ends_the_command(base, names):
    """It was printed in red and the server went on without it; beside a
    loaded base, whose thread was left running, the exit sometimes aborted."""
    done = subprocess.run([sys.executable, "-m", "lorakit", "serve", "--base", "voice-clone=demo", "--base", base,
                           "--port", str(_free_port())], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    said = one_error(done, names)
    assert done.returncode == 2 and "serving at" not in done.stdout + done.stderr
    assert "--base no/such/voice" not in said  # the base is named once


def _said_until_serving(folder):
    """What ``lorakit serve FOLDER`` prints before it serves, as one line."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "lorakit", "serve", str(folder), "--port", str(port)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any(line.startswith("serving at") for line in lines):
            line = server.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    return " ".join("".join(lines).split())


def test_an_empty_folder_is_served_with_a_word_that_nothing_is_there_yet(tmp_path):
    said = _said_until_serving(tmp_path)
    assert f"no adapters under {tmp_path} yet" in said and "first request that names it" in said


def test_a_folder_whose_only_adapter_is_damaged_says_so_not_that_none_is_there(tmp_path):
    adapter = tmp_path / "run" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "lorakit.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\x01")  # a copy cut short
    said = _said_until_serving(tmp_path / "run")
    assert f"no adapter it can serve (skipped below) under {tmp_path / 'run'} yet" in said
    assert f"skipped {adapter}:" in said and "damaged" in said


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


@pytest.mark.slow
def test_https_with_a_certificate_and_the_key_required(tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "lorakit", "serve", "--base", "caption=demo", "--port", str(port),
                               "--tls-cert", str(cert), "--tls-key", str(key), "--api-key", "s3cret"],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                health = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusted, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "lorakit serve did not answer within 2 minutes"
                time.sleep(0.5)
        assert health.status_code == 200
        png = (Path(__file__).parents[3] / "samples" / "vqa" / "inspection" / "item_0001.png").read_bytes()
        captioned = httpx.post(f"https://127.0.0.1:{port}/v1/captions", verify=trusted, timeout=60,
                               headers={"Authorization": "Bearer s3cret"}, files={"image": ("p.png", png, "image/png")})
        assert captioned.status_code == 200 and captioned.json()["caption"]
        with pytest.raises(httpx.TransportError):  # plain HTTP gets no answer from the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # nor does a client that does not trust the certificate
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"serving at https://127.0.0.1:{port}/ (OpenAI base_url https://127.0.0.1:{port}/v1)" in output


def test_tls_files_that_cannot_serve_are_refused_before_the_bases_load(tmp_path):
    cert, key = self_signed(tmp_path)
    other_cert, other_key = self_signed(tmp_path, "other")
    locked_cert, locked_key = self_signed(tmp_path, "locked", passphrase=b"pass")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    serve = ("serve", "--base", "caption=demo")
    fails_cleanly(*serve, "--tls-key", key, names=("--tls-key needs --tls-cert",))
    fails_cleanly(*serve, "--tls-cert", tmp_path / "nope.pem", "--tls-key", key,
                  names=("nope.pem: no such file", "openssl req -x509"))
    fails_cleanly(*serve, "--tls-cert", cert, "--tls-key", other_key,
                  names=(str(other_key), "is not the key of", str(cert)))
    fails_cleanly(*serve, "--tls-cert", locked_cert, "--tls-key", locked_key,
                  names=(str(locked_key), "passphrase", "openssl pkey"))
    fails_cleanly(*serve, "--tls-cert", tmp_path / "junk.pem", "--tls-key", key, names=("junk.pem", "not a PEM"))
    fails_cleanly(*serve, "--tls-cert", cert, names=(str(cert), "holds no private key", "--tls-key"))
    fails_cleanly(*serve, "--tls-cert", key, "--tls-key", cert, names=(str(key), "wrong way round"))


@pytest.mark.slow
def test_a_key_sent_over_plain_http_to_other_machines_is_warned_about():
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "lorakit", "serve", "--base", "caption=demo", "--port", str(port),
                               "--host", "0.0.0.0", "--api-key", "s3cret"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "lorakit serve did not answer within 2 minutes"
                time.sleep(0.5)
    finally:
        server.terminate()
        output = " ".join(server.communicate(timeout=30)[0].split())
    assert "0.0.0.0 is reachable from other machines over plain HTTP" in output and "--tls-cert" in output
