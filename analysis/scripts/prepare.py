"""The study's data: scikit-learn's bundled diabetes set (no download) as two CSV tables.

`diabetes.csv`: the ten features and the target `y`, with a header (the regression's input);
`diabetes-y.csv`: the target alone, one value a line (the mean's). Values are written with
`repr`, which reads back to the same float, so every site's share holds exactly these numbers.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from sklearn.datasets import load_diabetes


def main(table: Path, target: Path) -> None:
    data = load_diabetes()
    table.parent.mkdir(parents=True, exist_ok=True)
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*data.feature_names, "y"])
        for row, y in zip(data.data, data.target, strict=True):
            writer.writerow([repr(float(v)) for v in row] + [repr(float(y))])
    target.write_text("".join(f"{float(y)!r}\n" for y in data.target), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
