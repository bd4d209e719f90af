#!/usr/bin/env python3
"""Checks generated freeze configurations against the PyTorch models the fixtures come from.

    check_freeze_exports.py MANIFEST_JSON

MANIFEST_JSON: {"cases": [{"id", "style", "pytorch", "peft"?, "prefix"?, "wrap"?}]}, with
`style` a key of test/fixtures/generate.py's build_model ("timm", "deit_distilled", "hf_vit",
"torchvision", "openai_clip", "hf_clip") or a family of generate_families.py ("dinov2",
"hf_dinov2", "siglip", "hf_dinov3", "beit", and the SwiGLU families eva_swiglu*, hf_dinov2_swiglu). For each case the model is built with the fixture
generator's classes, the PyTorch configuration's apply() is run on it, and the PEFT file (run
with a stand-in `peft` module, PEFT itself is not needed) is checked against model.named_modules().
"wrap": the model is put inside a wrapper module as its `model` attribute (for prefix="model.").
Prints one JSON list of results. Exit 3 when torch cannot be imported.
"""

import importlib.util
import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures"))


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peft_arguments(path):
    received = {}

    class LoraConfig:
        def __init__(self, **kwargs):
            received.update(kwargs)

    sys.modules["peft"] = types.SimpleNamespace(LoraConfig=LoraConfig)
    try:
        module = load_module(path, "peft_config")
    finally:
        del sys.modules["peft"]
    return received, list(getattr(module, "TRAINABLE_PARAMETERS", []))


def check_case(generate, families, nn, case):
    style = case["style"]
    is_family = any(family[0] == style for family in families.FAMILIES)
    model = families.build_family(style) if is_family else generate.build_model(style)
    if case.get("wrap"):
        wrapper = nn.Module()
        wrapper.model = model
        model = wrapper
    result = {"id": case["id"]}
    module = load_module(case["pytorch"], "freeze_" + case["id"].replace("-", "_"))
    try:
        result["returned"] = module.apply(model, case.get("prefix", ""))
    except ValueError as error:
        result["applyError"] = str(error)
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    result["requiresGrad"] = [name for name, _ in trainable]
    result["trainableCount"] = int(sum(p.numel() for _, p in trainable))
    result["modelCount"] = int(sum(p.numel() for p in model.parameters()))
    if case.get("peft"):
        arguments, bare_parameters = peft_arguments(case["peft"])
        modules = dict(model.named_modules())
        parameters = dict(model.named_parameters())
        targets = list(arguments.get("target_modules") or [])
        to_save = list(arguments.get("modules_to_save") or [])
        result["peft"] = {
            "targetModules": targets,
            "modulesToSave": to_save,
            "missingTargets": [name for name in targets if name not in modules],
            "nonLinearTargets": [name for name in targets if name in modules and not isinstance(modules[name], nn.Linear)],
            "missingModulesToSave": [name for name in to_save if name not in modules],
            "trainableParameters": bare_parameters,
            "missingTrainableParameters": [name for name in bare_parameters if name not in parameters],
        }
    return result


def main(argv):
    try:
        import torch.nn as nn
    except ImportError:
        return 3
    sys.path.insert(0, FIXTURES)
    import generate
    import generate_families

    with open(argv[1], encoding="utf-8") as f:
        manifest = json.load(f)
    results = [check_case(generate, generate_families, nn, case) for case in manifest["cases"]]
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
