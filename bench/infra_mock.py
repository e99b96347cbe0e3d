"""How the Pulumi program scales: the sim stack with 3 and 50 sites under the SDK's mocks.

Declares the whole program (Federation, providers, hypervisor, per-site VM + provisioner)
against mocks that compute addresses and keys like the providers do, and reports how many
resources it declares and how long the run takes: the program's own cost, without any
provider or cloud latency. `python -m bench.infra_mock`, or `main()` from `make bench`.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter

from fedinfra.stack import build
from tests.infra.harness import run_program, setup, stack_config

SIZES = (3, 50)


def sim_config(sites: int) -> dict[str, str]:
    """The committed sim stack, with its sites multiplied."""
    cfg, _ = stack_config("sim")
    cfg["fedstack:sites"] = json.dumps(
        [
            {
                "name": f"site{i:03d}",
                "fc_user": f"site{i:03d}@fedstack.example",
                "coordinator": i == 0,
                "libvirt": {"hypervisor": "local", "memory": 2048, "vcpus": 2, "disk": 20},
            }
            for i in range(sites)
        ]
    )
    return cfg


def measure(sites: int) -> tuple[int, int, float]:
    """(resources declared, of which custom, seconds) for one mock run of the sim stack."""
    harness = setup("sim", sim_config(sites))
    started = time.perf_counter()
    run_program(lambda: build("sim"))
    seconds = time.perf_counter() - started
    kinds = Counter(r.custom for r in harness.mocks.resources)
    return len(harness.mocks.resources), kinds[True], seconds


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    print("fedinfra: sim stack under Pulumi mocks")
    print(f"{'sites':>6} {'resources':>10} {'custom':>7} {'seconds':>8}")
    for sites in SIZES:
        total, custom, seconds = measure(sites)
        print(f"{sites:>6} {total:>10} {custom:>7} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
