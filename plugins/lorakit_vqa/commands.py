"""``lorakit vqa-import``: turn the VQA v2 file pair into a lorakit VQA folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("vqa-import")
@click.option("--questions", required=True, type=click.Path(), help="VQA v2 questions JSON (v2_OpenEnded_mscoco_*_questions.json).")
@click.option("--annotations", required=True, type=click.Path(), help="VQA v2 annotations JSON (v2_mscoco_*_annotations.json).")
@click.option("--images", required=True, type=click.Path(), help="Folder of the split's COCO images; questions.jsonl is written here.")
@click.option("--limit", type=click.IntRange(min=1), help="Import at most this many questions.")
@click.option("--overwrite", is_flag=True, help="Replace an existing questions.jsonl.")
def vqa_import(questions: str, annotations: str, images: str, limit: int | None, overwrite: bool) -> None:
    """Write IMAGES/questions.jsonl from a VQA v2 questions + annotations pair."""
    from lorakit_vqa.vqa_v2 import import_vqa_v2

    summary = import_vqa_v2(Path(questions), Path(annotations), Path(images), limit=limit, overwrite=overwrite)
    skipped = f"; {summary.missing_images} skipped (image not in {images})" if summary.missing_images else ""
    click.echo(f"{summary.written} questions written to {summary.path}{skipped}")
