"""``lorakit serve``: trained adapters behind an HTTP API and a web page.

One process loads each base once and every adapter found under the served
folders into it, unmerged; each request names the adapters (and weights) it
wants. One worker thread per base runs that base's requests in turn, so
switching adapters never races, and requests asking for the same adapters
while one runs are answered as one batch.

* ``catalog``       finding adapters under the served folders
* ``loaded_base``   a base with its adapters loaded unmerged, and mixing them
* ``worker``        the per-base thread, its bounded queue and batching
* ``audio_formats`` wav / flac / mp3 / opus / pcm bytes of a clip
* ``app``           the FastAPI app: OpenAI speech, caption, VQA, music, pages
"""
