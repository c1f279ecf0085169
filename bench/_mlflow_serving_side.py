"""The MLflow half of bench/serving.py's set-up; runs inside the MLflow virtualenv, never imports Shipyard.

    python bench/_mlflow_serving_side.py --model-dir TMP/mlflow-model --row '[17.99, 10.38, ...]'

Trains the benchmark's model (StandardScaler + LogisticRegression(C=1.0) on scikit-learn's
breast_cancer data, the same as Shipyard's version 1 and the bare app's), saves it with
``mlflow.sklearn.save_model`` for ``mlflow models serve``, and writes one JSON line to stdout:
the model's own prediction for ``--row`` (to check the server's answer against), and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Keep stdout for the one result line; anything MLflow prints goes to stderr, which the caller logs.
_protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

import mlflow  # noqa: E402 - after the stdout swap, so import-time output cannot corrupt the protocol
import mlflow.sklearn  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="where save_model writes (must not exist)")
    parser.add_argument("--row", required=True, help="one row as a JSON list of floats")
    parser.add_argument("--c", type=float, default=1.0, help="LogisticRegression's C")
    args = parser.parse_args()

    features, target = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=1000)).fit(features, target)
    row = np.asarray([json.loads(args.row)], dtype=np.float64)
    mlflow.sklearn.save_model(model, args.model_dir, input_example=features[:2])
    result = {
        "model_dir": args.model_dir,
        "prediction": model.predict(row).tolist(),
        "mlflow": mlflow.__version__,
        "sklearn": sklearn.__version__,
    }
    _protocol.write(json.dumps(result) + "\n")
    _protocol.flush()


if __name__ == "__main__":
    main()
