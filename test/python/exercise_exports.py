#!/usr/bin/env python3
"""Runs generated configuration files without PyTorch or PEFT, for the unit tests.

    exercise_exports.py apply PYTORCH_FILE PARAMETERS_JSON [PREFIX]
        Loads the generated PyTorch module and calls apply() on a stand-in model whose
        named_parameters() yields the names in PARAMETERS_JSON (a JSON list). Prints JSON:
        {"returned": [...], "trainable": [...]} or {"error": "..."} when apply raises ValueError.
    exercise_exports.py peft PEFT_FILE
        Executes the generated PEFT file with a stand-in `peft` module; prints the keyword
        arguments LoraConfig received as JSON.
    exercise_exports.py yaml YAML_FILE
        Prints the YAML document as JSON (exit 3 when PyYAML is missing).
"""

import importlib.util
import json
import sys
import types


class StandInParameter:
    def __init__(self):
        self.requires_grad = True

    def requires_grad_(self, flag=True):
        self.requires_grad = bool(flag)
        return self


class StandInModel:
    def __init__(self, names):
        self._parameters = [(name, StandInParameter()) for name in names]

    def named_parameters(self):
        return iter(self._parameters)


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_apply(path, names_path, prefix=""):
    with open(names_path, encoding="utf-8") as f:
        names = json.load(f)
    model = StandInModel(names)
    module = load_module(path, "freeze_plan")
    try:
        returned = module.apply(model, prefix)
    except ValueError as error:
        return {"error": str(error), "trainable": [n for n, p in model.named_parameters() if p.requires_grad]}
    return {"returned": returned, "trainable": [n for n, p in model.named_parameters() if p.requires_grad]}


def run_peft(path):
    received = {}

    class LoraConfig:
        def __init__(self, **kwargs):
            received.update(kwargs)

    sys.modules["peft"] = types.SimpleNamespace(LoraConfig=LoraConfig)
    load_module(path, "peft_config")
    return received


def main(argv):
    command = argv[1]
    if command == "apply":
        result = run_apply(argv[2], argv[3], argv[4] if len(argv) > 4 else "")
    elif command == "peft":
        result = run_peft(argv[2])
    elif command == "yaml":
        try:
            import yaml
        except ImportError:
            return 3
        with open(argv[2], encoding="utf-8") as f:
            result = yaml.safe_load(f)
    else:
        raise SystemExit("unknown command %r" % command)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
