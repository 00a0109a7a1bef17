#!/usr/bin/env python3
"""Random Gemma 3 checkpoints for speed measurements (never for tests: nothing checks their outputs).

Usage: .venv/bin/python scripts/make_bench_gemma3.py OUT_DIR [--size 100m|full]
  100m  ~0.1 B parameters (text 640 hidden × 12 layers, 4 heads / 1 KV head of 256, vocabulary 32 000;
        SigLIP 384 × 6 layers, 224 px, 64 soft tokens), f32: the CPU benchmarks' model
        (scripts/bench_engine.py, scripts/bench_chat.py).
  full  MedGemma 4B's shapes (Gemma 3 4B text + SigLIP so400m at 896 px, 256 soft tokens), bf16, about 8 GB
        on disk and twice that in memory while it is made: for GPU machines.
The tokenizer is the tiny fixtures' byte-fallback BPE (models/tests/fixtures/make_tiny_gemma3.py); ids past
it spell nothing, which is fine for counting tokens. A random image.png of the model's input size is
written beside the weights.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import Gemma3Config, Gemma3ForConditionalGeneration

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models/tests/fixtures"))
import make_tiny_gemma3 as tiny  # noqa: E402

SIZES = {
    "100m": dict(
        dtype=torch.float32, layout="legacy", shards=1,
        text=dict(vocab_size=32_000, hidden_size=640, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
                  sliding_window=512, sliding_window_pattern=6, rope_scaling={"rope_type": "linear", "factor": 8.0}),
        vision=dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6,
                    image_size=224, patch_size=14),
        mm_tokens_per_image=64,
    ),
    "full": dict(
        dtype=torch.bfloat16, layout="current", shards=4,
        text=dict(vocab_size=262_208, hidden_size=2560, intermediate_size=10_240, num_hidden_layers=34,
                  num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                  sliding_window=1024, sliding_window_pattern=6, max_position_embeddings=131_072,
                  rope_scaling={"rope_type": "linear", "factor": 8.0}),
        vision=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                    image_size=896, patch_size=14),
        mm_tokens_per_image=256,
    ),
}


def make(out: Path, size: str):
    """Writes the checkpoint unless it is already there."""
    if (out / "config.json").exists() and (out / "image.png").exists():
        return
    spec = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    config_json = {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "boi_token_index": tiny.SPECIALS["<start_of_image>"], "eoi_token_index": tiny.SPECIALS["<end_of_image>"],
        "image_token_index": tiny.SPECIALS["<image_soft_token>"],
        "eos_token_id": [tiny.SPECIALS["<eos>"], tiny.SPECIALS["<end_of_turn>"]],
        "mm_tokens_per_image": spec["mm_tokens_per_image"],
        "torch_dtype": str(spec["dtype"]).removeprefix("torch."),
        "text_config": tiny.text_config(**spec["text"]),
        "vision_config": {"model_type": "siglip_vision_model", "layer_norm_eps": 1e-6, "vision_use_head": False,
                          **spec["vision"]},
    }
    torch.manual_seed(0)
    torch.set_default_dtype(spec["dtype"])
    model = Gemma3ForConditionalGeneration(Gemma3Config.from_dict(config_json)).eval()
    model.tie_weights()
    (out / "config.json").write_text(json.dumps(config_json, indent=2))
    tiny.save_weights(model, out, spec["layout"], spec["shards"])
    tiny.make_tokenizer().save(str(out / "tokenizer.json"))
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": tiny.SPECIALS["<bos>"], "eos_token_id": [tiny.SPECIALS["<eos>"], tiny.SPECIALS["<end_of_turn>"]]}))
    side = spec["vision"]["image_size"]
    (out / "preprocessor_config.json").write_text(json.dumps({
        "size": {"height": side, "width": side}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
        "rescale_factor": 1 / 255}))
    (out / "MEDGEMMA_X_TEST_MODEL").write_text("Random weights from scripts/make_bench_gemma3.py, for speed only.\n")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB").save(out / "image.png")
    print(f"{out}: {size}, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", choices=sorted(SIZES), default="100m")
    args = ap.parse_args()
    make(args.out, args.size)
