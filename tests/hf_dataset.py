"""Hugging Face datasets written as the datasets library leaves them on disk:
parquet files as the Hub serves them (``data/train-00000-of-00002.parquet``)
and ``save_to_disk`` folders (``train/data-00000-of-00001.arrow``), with the
``huggingface`` schema metadata that records each column's feature type."""

import json
from pathlib import Path

#: The datasets library's feature types, as its files record them.
IMAGE = {"_type": "Image"}
AUDIO = {"sampling_rate": 22050, "decode": True, "_type": "Audio"}
TEXT = {"dtype": "string", "_type": "Value"}
TEXTS = {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}


def image_cell(data: bytes, path: str | None = None) -> dict:
    """An Image (or Audio) feature's value: the file's bytes and its name."""
    return {"bytes": data, "path": path}


def table(rows: list[dict], features: dict, record_features: bool = True):
    import pyarrow as pa

    columns = {}
    for name, feature in features.items():
        values = [row[name] for row in rows]
        if feature in (IMAGE, AUDIO):
            kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        elif feature == TEXT:
            kind = pa.string()
        else:
            kind = None  # inferred (lists of texts, of records)
        columns[name] = pa.array(values, type=kind)
    result = pa.table(columns)
    if record_features:
        info = {"info": {"features": features}}
        result = result.replace_schema_metadata({b"huggingface": json.dumps(info).encode()})
    return result


def write_hub_dataset(folder: Path, splits: dict[str, list[dict]], features: dict, shards: int = 1,
                      record_features: bool = True) -> Path:
    """``folder/data/SPLIT-0000K-of-0000N.parquet`` for each split, as the Hub lays a dataset out."""
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        size = -(-len(rows) // shards)
        for shard in range(shards):
            part = table(rows[shard * size:(shard + 1) * size], features, record_features)
            pq.write_table(part, folder / "data" / f"{split}-{shard:05d}-of-{shards:05d}.parquet")
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# a dataset card\n")
    return folder


def write_saved_dataset(folder: Path, splits: dict[str, list[dict]], features: dict) -> Path:
    """``Dataset.save_to_disk``'s layout: ``SPLIT/data-00000-of-00001.arrow`` (Arrow stream files)."""
    import pyarrow as pa

    for split, rows in splits.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        part = table(rows, features)
        with pa.OSFile(str(folder / split / "data-00000-of-00001.arrow"), "wb") as sink:
            with pa.ipc.new_stream(sink, part.schema) as writer:
                writer.write_table(part)
        (folder / split / "state.json").write_text("{}")
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    return folder
