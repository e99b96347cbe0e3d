"""The data of the embedded demo: fedflow's three mean-app sites, then generated sites.

The first three sites carry the values whose federated mean the platform documents
(54.20000000000001), so a demo run can be checked by eye; further sites get values drawn from a
seeded generator so that every run of `--demo --sites N` computes the same answer.
"""

from __future__ import annotations

import random

CHECK_SITES: tuple[tuple[int, ...], ...] = (
    (52, 49, 26, 77, 23, 30, 32, 18, 98, 12),
    (33, 94, 50, 68, 88, 90, 69, 12, 80, 63),
    (26, 54, 93, 79, 76, 28, 48, 50, 88, 20),
)
CHECK_MEAN = "54.20000000000001"

MEAN_CONFIG_YML = "fc_mean:\n  input_name: data.csv\n  output_name: output.csv\n"


def site_values(index: int) -> tuple[int, ...]:
    """The values of demo site `index` (0-based): fixed for the first three, seeded after."""
    if index < len(CHECK_SITES):
        return CHECK_SITES[index]
    rng = random.Random(f"fedstack-demo-{index}")
    return tuple(rng.randint(1, 99) for _ in range(10))


def site_csv(index: int) -> str:
    """One header-less CSV row, as the mean app reads it."""
    return ",".join(str(v) for v in site_values(index)) + "\n"
