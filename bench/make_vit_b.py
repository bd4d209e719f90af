#!/usr/bin/env python3
"""Build the benchmark model and inputs (run by hand; outputs are not committed):

    python3 bench/make_vit_b.py OUT_DIR

Writes, under OUT_DIR:
- vit_b16.onnx: a timm-style ViT-B/16 at 224x224 (hidden 768, 12 heads, 12 blocks, MLP 3072,
  1000 classes, ~86M parameters), random seeded weights, ONNX opset 17, dynamic batch;
  input `input0` [batch_size, 3, 224, 224], output `output0` [batch_size, 1000]. About 350 MB.
- vit_b16.pt: the same weights as a PyTorch state_dict (read by bench/reference_plasticity.py).
- reference/000.npy..063.npy and target/000.npy..063.npy: float32 [3, 224, 224] inputs, seeded
  random crops of samples/reference (photos) and samples/target (textures), preprocessed as in
  the paper (shorter side 224 bilinear, centre crop, ImageNet normalisation) plus a little seeded
  Gaussian noise so that the 64 inputs of a set differ.

The model classes and the weight perturbation are those of test/fixtures/generate.py.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures"))
import generate  # noqa: E402  (test/fixtures/generate.py)

VIT_B16 = dict(image_size=224, patch_size=16, hidden=768, heads=12, mlp=3072, depth=12, num_classes=1000)
MODEL_SEED = 16
INPUT_SEED = 17
INPUTS_PER_SET = 64
NOISE_STD = 0.1  # in normalised units


def build_vit_b16():
    return generate.seeded_model("timm", VIT_B16, seed=MODEL_SEED)


def random_crop_inputs(images, count, size, rng):
    """count inputs from a list of PIL images: a random crop covering 40-100% of each side,
    the paper's preprocessing to size x size, then Gaussian noise."""
    out = []
    for i in range(count):
        image = images[i % len(images)]
        w, h = image.size
        cw = int(round(w * rng.uniform(0.4, 1.0)))
        ch = int(round(h * rng.uniform(0.4, 1.0)))
        left = int(rng.integers(0, w - cw + 1))
        top = int(rng.integers(0, h - ch + 1))
        crop = image.crop((left, top, left + cw, top + ch))
        arr = generate.preprocess(crop, size)
        arr = arr + rng.normal(0.0, NOISE_STD, size=arr.shape).astype(np.float32)
        out.append(np.ascontiguousarray(arr, dtype="<f4"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)

    t0 = time.time()
    model = build_vit_b16()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"ViT-B/16: {n_params / 1e6:.1f}M parameters (built in {time.time() - t0:.1f} s)")
    torch.save(model.state_dict(), os.path.join(args.out_dir, "vit_b16.pt"))

    onnx_path = os.path.join(args.out_dir, "vit_b16.onnx")
    t0 = time.time()
    generate.export_model(model, "timm", 17, True, onnx_path, image_size=VIT_B16["image_size"])
    print(f"{onnx_path}: {os.path.getsize(onnx_path) / 1e6:.1f} MB (exported in {time.time() - t0:.1f} s)")

    from PIL import Image
    rng = np.random.default_rng(INPUT_SEED)
    for set_name, table in (("reference", generate.REFERENCE_IMAGES), ("target", generate.TARGET_IMAGES)):
        images = []
        for file_name, _source, _box in table:
            with Image.open(os.path.join(generate.SAMPLES_DIR, set_name, file_name)) as im:
                images.append(im.convert("RGB"))
        folder = os.path.join(args.out_dir, set_name)
        os.makedirs(folder, exist_ok=True)
        for i, arr in enumerate(random_crop_inputs(images, INPUTS_PER_SET, VIT_B16["image_size"], rng)):
            np.save(os.path.join(folder, f"{i:03d}.npy"), arr, allow_pickle=False)
        print(f"{folder}: {INPUTS_PER_SET} inputs [3, 224, 224]")


if __name__ == "__main__":
    main()
