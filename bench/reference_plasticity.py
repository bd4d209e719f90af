#!/usr/bin/env python3
"""The paper's plasticity procedure as a plain PyTorch program: the baseline to compare the
engine against (run by hand after bench/make_vit_b.py):

    python3 bench/reference_plasticity.py OUT_DIR [--pairs 64] [--batch 8] [--threads N]

For every pair (reference i, target i) it embeds both images (the token sequence entering
block 0), then for every block and every component f in LN1, MHA, LN2, FC1, FC2 computes f(X)
and f(Y) separately, fed the embedding output as in the paper (MHA: the whole attention module
on raw X; FC1 without activation; FC2 on X zero-padded to the MLP width), and the ratio
||f(X) - f(Y)||_F / ||X - Y||_F. No algebraic shortcuts: this is what the engine's identities
must reproduce up to float32 rounding. float32, torch.no_grad, pairs in batches.

Prints torch's thread count and the seconds per pair; writes OUT_DIR/reference_result.json with
the mean (and std, n) per block per component.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures"))
import generate  # noqa: E402
from make_vit_b import VIT_B16  # noqa: E402

COMPONENTS = ["LN1", "MHA", "LN2", "FC1", "FC2"]


def blas_threads():
    """OpenBLAS keeps its own thread pool, separate from torch's intra-op threads (Debian's
    torch reports 1 thread while its OpenBLAS uses every core). None when not OpenBLAS."""
    import ctypes
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libs = sorted({line.split()[-1] for line in maps if "libopenblas" in line})
        return ctypes.CDLL(libs[0]).openblas_get_num_threads() if libs else None
    except (OSError, AttributeError, IndexError):
        return None


def load_model(out_dir):
    model = generate.TimmVisionTransformer(**VIT_B16)
    state = torch.load(os.path.join(out_dir, "vit_b16.pt"), map_location="cpu")
    model.load_state_dict(state)
    return model.float().eval()


def load_set(out_dir, set_name, count):
    arrays = [np.load(os.path.join(out_dir, set_name, f"{i:03d}.npy")) for i in range(count)]
    return torch.from_numpy(np.stack(arrays)).float()


def embed(model, pixels):
    """Patch projection, class token, position embedding: the input of block 0. [B, N, d]"""
    x = model.patch_embed(pixels)
    cls = model.cls_token.expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    return x + model.pos_embed


def per_sample_norm(t):
    return torch.linalg.norm(t.reshape(t.shape[0], -1), dim=1)


def pad_to(x, width):
    return torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], width - x.shape[2])], dim=-1)


@torch.no_grad()
def measure(model, ref, tgt, batch):
    """Returns ratios [pairs, blocks, components]."""
    depth = len(model.blocks)
    mlp = model.blocks[0].mlp.fc1.out_features
    ratios = torch.zeros(ref.shape[0], depth, len(COMPONENTS), dtype=torch.float64)
    for start in range(0, ref.shape[0], batch):
        stop = min(start + batch, ref.shape[0])
        X = embed(model, ref[start:stop])
        Y = embed(model, tgt[start:stop])
        denom = per_sample_norm(X - Y)
        for b, blk in enumerate(model.blocks):
            components = {
                "LN1": blk.norm1,
                "MHA": blk.attn,
                "LN2": blk.norm2,
                "FC1": blk.mlp.fc1,
                "FC2": lambda t, fc2=blk.mlp.fc2: fc2(pad_to(t, mlp)),
            }
            for c, name in enumerate(COMPONENTS):
                f = components[name]
                fx = f(X)
                fy = f(Y)
                ratios[start:stop, b, c] = (per_sample_norm(fx - fy) / denom).double()
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8, help="pairs per batch (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.zeros(2, 2) @ torch.zeros(2, 2)  # loads the BLAS library
    print(f"torch {torch.__version__}, torch.get_num_threads(): {torch.get_num_threads()}, "
          f"OpenBLAS threads: {blas_threads()}, CPUs: {os.cpu_count()}")

    model = load_model(args.out_dir)
    ref = load_set(args.out_dir, "reference", args.pairs)
    tgt = load_set(args.out_dir, "target", args.pairs)

    measure(model, ref[:1], tgt[:1], 1)  # warm-up (allocator, BLAS threads)
    t0 = time.perf_counter()
    c0 = time.process_time()
    ratios = measure(model, ref, tgt, args.batch)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    per_pair = seconds / args.pairs
    print(f"{args.pairs} pairs in {seconds:.2f} s: {per_pair:.3f} s per pair (batch {args.batch})")

    mean = ratios.mean(0)
    std = ratios.std(0, unbiased=True) if args.pairs > 1 else torch.zeros_like(mean)
    print("mean per component over blocks: " +
          ", ".join(f"{c} {mean[:, i].mean():.4f}" for i, c in enumerate(COMPONENTS)))
    result = {
        "model": "vit_b16.onnx",
        "pairs": args.pairs,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "blasThreads": blas_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "secondsTotal": seconds,
        "secondsPerPair": per_pair,
        "cpuSecondsPerPair": cpu_seconds / args.pairs,
        "components": COMPONENTS,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "n": args.pairs,
    }
    path = os.path.join(args.out_dir, "reference_result.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
