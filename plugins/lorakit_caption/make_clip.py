"""Build the demo CLIP: a tiny open_clip model trained contrastively on the
synthetic caption worlds (scenes and catalog items with their captions).

    python -m lorakit_caption.make_clip --out plugins/lorakit_caption/demo_clip [--quick]

It serves `lorakit caption --rerank clip` and the CLIPScore metric offline;
real work passes a real open_clip model with --clip. The folder has the layout
of open_clip models on the Hugging Face Hub (open_clip_config.json,
open_clip_model.safetensors), so `--clip FOLDER` reads any folder it writes.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from lorakit_caption import synthetic
from lorakit_caption.clip import FOLDER_CONFIG, FOLDER_WEIGHTS

CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build(out: Path, steps: int, seed: int = 0) -> None:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / FOLDER_CONFIG).write_text(json.dumps({"model_cfg": CONFIG}, indent=2) + "\n")
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}", load_weights=False,
                                                                 pretrained_text=False)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    samples = synthetic.render("scene", 1500, seed) + synthetic.render("catalog", 1500, seed + 1)
    images = torch.stack([preprocess(s.image) for s in samples])
    texts = tokenizer([s.caption for s in samples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    rng = random.Random(seed)
    model.train()
    for step in range(steps):
        index = torch.tensor(rng.sample(range(len(samples)), 128))
        image_features, text_features, scale = model(images[index], texts[index])[:3]
        logits = scale * image_features @ text_features.T
        target = torch.arange(len(index))
        loss = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # Half precision halves the committed file; scores are computed in float32.
    state = {k: v.detach().half().contiguous() if v.is_floating_point() else v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / FOLDER_WEIGHTS[0]))
    print(f"saved the demo CLIP to {out} (last contrastive loss {loss.item():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few steps only (to test the script)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    build(args.out, steps=3 if args.quick else 300)


if __name__ == "__main__":
    main()
