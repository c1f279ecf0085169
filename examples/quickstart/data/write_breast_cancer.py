"""Write breast_cancer.csv, the quickstart's bundled data set, from the copy scikit-learn ships.

    .venv/bin/python examples/quickstart/data/write_breast_cancer.py

The data is the Breast Cancer Wisconsin (Diagnostic) data set (Wolberg, Street and
Mangasarian, UCI Machine Learning Repository, CC BY 4.0): 569 tumours, 30 numeric features
computed from cell nuclei images, and ``target`` (0 = malignant, 1 = benign). Column names
are scikit-learn's with spaces turned into underscores. The file is committed so that the
pipeline reads a real file, as a user's own pipeline would; this script documents where it
came from and rebuilds it byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_breast_cancer

TARGET = Path(__file__).resolve().with_name("breast_cancer.csv")


def main() -> None:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [str(column).replace(" ", "_") for column in frame.columns]
    # "\n" line ends and repr-exact floats, so the file (and its digest) is the same on every platform.
    frame.to_csv(TARGET, index=False, lineterminator="\n")
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes, {len(frame)} rows)")


if __name__ == "__main__":
    main()
