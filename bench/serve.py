"""Serving: throughput and latency under concurrent clients, the bounded
queue, and the cost of switching adapters per request (loopback only).

    python bench/serve.py [--requests 48] [--clients 8] [--rounds 3] [--base FOLDER]
    python bench/real_size.py /tmp/real --only voice && python bench/serve.py --base /tmp/real/vits-vctk

Everything runs in this process on 127.0.0.1: the demo VITS with 8 voice
adapters (random LoRA weights: speed does not depend on what they learnt),
served unmerged by ``lorakit serve``'s app, and the first adapter merged
into its base (``lorakit export --merged``) served as a plain base.

1. Throughput and p50/p95 latency of N concurrent clients vs the same
   requests sent one after another (one adapter; same-adapter requests that
   queue together are batched). Every request must succeed.
2. The bounded queue: a burst of 3x the queue size at once; each request
   gets an answer (200, or 503 with Retry-After), none is lost.
3. Switching: requests/s cycling through 8 adapters vs always the same
   merged adapter, sequential; goal >= 0.8. Also one unmerged adapter vs
   the merged one (the cost of LoRA kept unmerged), and cycling with
   ``--hot-mixes 8`` (each adapter merged into a private copy on its second
   use: 8 more copies of the model in memory).
4. A long text (``--long-sentences``, 20): time to the first audio byte and
   to the last of ``/v1/audio/speech`` (sent sentence by sentence, pcm) vs
   the same text as one job (``/v1/predict/voice-clone``: how speech was
   answered before), and the latency of a one-sentence request sent while
   each is being spoken.
Each variant is warmed up first; rounds rotate the order of the variants,
so a busy machine or a warmer cache favours none of them.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

SENTENCES = ["The ship left the harbour at dawn.", "Please call me back before noon.",
             "A quiet river runs past the old mill.", "We counted seven birds on the wire."]
ADAPTERS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queue", type=int, default=8, help="queue size of the server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base", default="demo", help="voice-clone base: demo, or a real-size folder")
    parser.add_argument("--long-sentences", type=int, default=20, help="sentences of the long text (section 4)")
    return parser.parse_args()


def speak(url: str, voice: str, text: str) -> tuple[int, float]:
    import httpx

    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": text,
                                                          "response_format": "wav"}, timeout=300)
    return response.status_code, time.perf_counter() - started


def sequential(url: str, voices: list[str], count: int) -> tuple[float, list[float], int]:
    """(seconds, latencies, failures) of ``count`` requests one after another."""
    started = time.perf_counter()
    results = [speak(url, voices[i % len(voices)], SENTENCES[i % len(SENTENCES)]) for i in range(count)]
    return time.perf_counter() - started, [t for _, t in results], sum(code != 200 for code, _ in results)


def concurrent_clients(url: str, voice: str, count: int, clients: int) -> tuple[float, list[float], list[int]]:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: speak(url, voice, SENTENCES[i % len(SENTENCES)]), range(count)))
    return time.perf_counter() - started, [t for _, t in results], [code for code, _ in results]


def long_text(url: str, voice: str, text: str, streamed: bool) -> tuple[float, float]:
    """(seconds to the first byte, to the last) of ``text`` spoken as speech
    sent sentence by sentence, or as one /v1/predict job."""
    import httpx

    started = time.perf_counter()
    if streamed:
        request = ("POST", f"{url}/v1/audio/speech",
                   {"model": "tts-1", "voice": voice, "input": text, "response_format": "pcm"})
    else:
        request = ("POST", f"{url}/v1/predict/voice-clone",
                   {"inputs": [text], "adapters": [{"name": voice, "weight": 1.0}]})
    first = None
    with httpx.stream(request[0], request[1], json=request[2], timeout=600) as response:
        for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
    return first, time.perf_counter() - started


def short_during_long(url: str, voice: str, text: str, streamed: bool) -> float:
    """Latency of a one-sentence request sent a moment after a long text."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(long_text, url, voice, text, streamed)
        time.sleep(0.2)  # the long one is being spoken
        code, seconds = speak(url, voice, SENTENCES[0])
        assert code == 200
        long.result()
    return seconds


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from alternate import rotated  # bench/, this script's folder
    from lorakit.artifact import read_manifest
    from lorakit.device import inference_device
    from lorakit.runs import export_merged
    from lorakit.serving.app import create_app
    from lorakit.serving.background import BackgroundServer
    from lorakit.serving.service import Service
    from lorakit.testing import random_adapter

    work = Path(tempfile.mkdtemp(prefix="lorakit-bench-serve-"))
    voices = [f"voice-{i}" for i in range(ADAPTERS)]
    for i, name in enumerate(voices):
        random_adapter("voice-clone", args.base, work / "runs" / name, seed=i)
    export_merged(work / "runs" / voices[0], work / "merged")
    # The merged export speaks the cloned voice through the adapter's slot.
    slot = read_manifest(work / "runs" / voices[0] / "adapter").options["slot"]
    unmerged = Service([work / "runs"], queue_size=args.clients * 2)
    merged = Service([], [("voice-clone", str(work / "merged"))], queue_size=args.clients * 2)
    small = Service([work / "runs"], queue_size=args.queue)
    hot = Service([work / "runs"], queue_size=args.clients * 2, hot_mixes=ADAPTERS)
    services = (unmerged, merged, small, hot)
    for service in services:
        service.start()
    servers = [BackgroundServer(create_app(s)) for s in services]
    url, merged_url, small_url, hot_url = (s.url for s in servers)
    # Warm-up: first calls allocate; every adapter and the merged base speak once.
    sequential(url, voices, ADAPTERS)
    speak(merged_url, slot, SENTENCES[0])
    sequential(hot_url, voices, 2 * ADAPTERS)  # each adapter's second use makes its merged copy
    print(f"device {inference_device()}, fp32, {args.threads} threads; base {args.base}, {ADAPTERS} voice adapters; "
          f"{args.requests} requests per measurement, {args.rounds} rounds")

    seq_times, conc_times, seq_lat, conc_lat, failed = [], [], [], [], [0]
    switch_times, same_merged_times, one_unmerged_times, hot_times = [], [], [], []

    def one_adapter_sequential():
        seconds, latencies, failures = sequential(url, voices[:1], args.requests)
        seq_times.append(seconds), seq_lat.extend(latencies)
        failed[0] += failures

    def one_adapter_concurrent():
        seconds, latencies, codes = concurrent_clients(url, voices[0], args.requests, args.clients)
        conc_times.append(seconds), conc_lat.extend(latencies)
        failed[0] += sum(code != 200 for code in codes)

    measurements = [one_adapter_sequential, one_adapter_concurrent,
                    lambda: switch_times.append(sequential(url, voices, args.requests)[0]),
                    lambda: same_merged_times.append(sequential(merged_url, [slot], args.requests)[0]),
                    lambda: one_unmerged_times.append(sequential(url, voices[:1], args.requests)[0]),
                    lambda: hot_times.append(sequential(hot_url, voices, args.requests)[0])]
    for round_index in range(args.rounds):
        for measure in rotated(measurements, round_index):
            measure()
    failed = failed[0]

    n = args.requests
    print("\n1. concurrency (one adapter)")
    print(f"   sequential: {n / statistics.median(seq_times):.2f} req/s, p50 {percentile(seq_lat, 50):.3f} s, "
          f"p95 {percentile(seq_lat, 95):.3f} s")
    print(f"   {args.clients} clients:  {n / statistics.median(conc_times):.2f} req/s, "
          f"p50 {percentile(conc_lat, 50):.3f} s, p95 {percentile(conc_lat, 95):.3f} s")
    speedup = statistics.median(seq_times) / statistics.median(conc_times)
    print(f"   throughput ratio concurrent / sequential: {speedup:.2f}"
          f"; failed requests: {failed}")

    burst = args.queue * 3
    _, _, codes = concurrent_clients(small_url, voices[0], burst, burst)
    ok, full = codes.count(200), codes.count(503)
    print(f"\n2. queue of {args.queue}, burst of {burst} at once: {ok} answered, {full} told 503 (Retry-After), "
          f"{burst - ok - full} other (goal 0), {burst - len(codes)} lost (goal 0)")

    switching = statistics.median(same_merged_times) / statistics.median(switch_times)
    unmerged_cost = statistics.median(one_unmerged_times) / statistics.median(same_merged_times)
    print("\n3. switching (sequential)")
    print(f"   cycling {ADAPTERS} adapters: {n / statistics.median(switch_times):.2f} req/s; one merged adapter: "
          f"{n / statistics.median(same_merged_times):.2f} req/s")
    print(f"   requests/s switching / merged: {switching:.2f} (goal >= 0.8)")
    print(f"   latency of one unmerged adapter / merged: {unmerged_cost:.2f}")
    print(f"   cycling {ADAPTERS} adapters with --hot-mixes {ADAPTERS}: {n / statistics.median(hot_times):.2f} req/s; "
          f"switching / merged {statistics.median(same_merged_times) / statistics.median(hot_times):.2f} (goal >= 0.8)")

    from lorakit_voice.synthetic import sentences

    text = " ".join(sentences(args.long_sentences, 7))
    firsts: dict[bool, list[float]] = {True: [], False: []}
    lasts: dict[bool, list[float]] = {True: [], False: []}
    shorts: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for streamed in ((True, False) if round_ % 2 == 0 else (False, True)):  # neither always goes first
            first, last = long_text(url, voices[0], text, streamed)
            firsts[streamed].append(first), lasts[streamed].append(last)
            shorts[streamed].append(short_during_long(url, voices[0], text, streamed))
    med = {key: {s: statistics.median(v[s]) for s in v} for key, v in
           (("first", firsts), ("last", lasts), ("short", shorts))}
    print(f"\n4. a long text ({args.long_sentences} sentences, {len(text)} characters)")
    for streamed, name in ((True, "speech, sentence by sentence"), (False, "one job (/v1/predict)")):
        print(f"   {name}: first byte {med['first'][streamed]:.2f} s, last {med['last'][streamed]:.2f} s; "
              f"a one-sentence request sent meanwhile: {med['short'][streamed]:.2f} s")
    print(f"   first byte streamed / one job: {med['first'][True] / med['first'][False]:.3f}; "
          f"last byte: {med['last'][True] / med['last'][False]:.3f}; "
          f"one-sentence request meanwhile: {med['short'][True] / med['short'][False]:.3f}")
    for server in servers:
        server.stop()
    for service in services:
        service.stop()


if __name__ == "__main__":
    main()
