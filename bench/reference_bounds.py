"""Float64 spectral norms for the bounds benchmark (bench/bounds-bench.ts).

Reads a JSON job on stdin: {"model": path, "matrices": [{"weight": initializer name,
"layout": "inOut" | "outIn", "rows": d or null}]}, where rows limits the weight to its first
d input features (FC2's probed rows). Prints {"sigma": [...]}: the largest singular value of
each, by numpy's SVD in float64. Needs numpy and onnx (Debian: python3-numpy python3-onnx).
"""
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main() -> None:
    job = json.load(sys.stdin)
    model = onnx.load(job["model"])
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    sigma = []
    for matrix in job["matrices"]:
        weight = numpy_helper.to_array(weights[matrix["weight"]]).astype(np.float64)
        inputs_first = weight if matrix["layout"] == "inOut" else weight.T
        if matrix["rows"] is not None:
            inputs_first = inputs_first[: matrix["rows"], :]
        sigma.append(float(np.linalg.svd(inputs_first, compute_uv=False)[0]))
    json.dump({"sigma": sigma}, sys.stdout)


if __name__ == "__main__":
    main()
