"""``lorakit vqa-import``: a VQA dataset as a lorakit VQA folder, from the VQA
v2 file pair or from a Hugging Face dataset on disk."""

from __future__ import annotations

from pathlib import Path

import click

from lorakit.api import ConfigError, console, import_options


@click.command("vqa-import")
@import_options("With DATASET: the VQA folder to write (images + questions.jsonl).", dataset_required=False)
@click.option("--image-column", help="With DATASET: the images' column (default: its one Image column).")
@click.option("--question-column", help="With DATASET: the questions' column (default: question).")
@click.option("--answer-column", help="With DATASET: the answers' column (default: the first of answers, answer, "
                                      "multiple_choice_answer, label).")
@click.option("--questions", type=click.Path(), help="VQA v2 questions JSON (v2_OpenEnded_mscoco_*_questions.json).")
@click.option("--annotations", type=click.Path(), help="VQA v2 annotations JSON (v2_mscoco_*_annotations.json).")
@click.option("--images", type=click.Path(), help="Folder of the split's COCO images; questions.jsonl is written here.")
def vqa_import(dataset: str | None, out: str | None, image_column: str | None, question_column: str | None,
               answer_column: str | None, questions: str | None, annotations: str | None, images: str | None,
               split: str, where: tuple[str, ...], limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Write a VQA folder: from a Hugging Face dataset on disk (DATASET: its
    folder as downloaded from the Hub, with .parquet files, or saved with
    save_to_disk; or one .parquet file) into --out, or from a VQA v2
    questions + annotations pair (--questions, --annotations) into --images."""
    v2 = {"--questions": questions, "--annotations": annotations, "--images": images}
    if dataset is not None:
        given = [flag for flag, value in v2.items() if value is not None]
        if given or out is None:
            raise ConfigError("with DATASET, pass --out FOLDER" + (f" and not {', '.join(given)} (the VQA v2 "
                              "pair's options)" if given else ""))
        from lorakit_vqa.hf_import import import_vqa_dataset

        summary = import_vqa_dataset(Path(dataset), Path(out), split, image_column, question_column,
                                     answer_column, limit, overwrite, show_progress=not quiet, where=where)
        console.print(f"{summary.records} questions about {summary.files} images written to {summary.out}"
                      f"{summary.skipped_note()}", highlight=False)
        return
    for_dataset = {"--out": out, "--image-column": image_column, "--question-column": question_column,
                   "--answer-column": answer_column, "--where": where or None,
                   "--split": None if split == "train" else split}
    named = [flag for flag, value in for_dataset.items() if value is not None]
    if named and any(value is not None for value in v2.values()):
        raise ConfigError(f"{', '.join(named)} go with a DATASET folder, not with the VQA v2 pair")
    missing = [flag for flag, value in v2.items() if value is None]
    if len(missing) == len(v2):
        raise ConfigError("pass a Hugging Face DATASET folder with --out FOLDER, or the VQA v2 pair: --questions, "
                          "--annotations and --images")
    if missing:
        raise ConfigError(f"the VQA v2 pair needs {' and '.join(missing)} too")
    from lorakit_vqa.vqa_v2 import import_vqa_v2

    summary = import_vqa_v2(Path(questions), Path(annotations), Path(images), limit=limit, overwrite=overwrite)
    skipped = f"; {summary.missing_images} skipped (image not in {images})" if summary.missing_images else ""
    click.echo(f"{summary.written} questions written to {summary.path}{skipped}")
