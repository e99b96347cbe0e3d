"""The registry keeps the contract: every backend under its own name, a placement model the
spec offers under that name, and its own test module beside this one."""

from __future__ import annotations

import re
from pathlib import Path

from fedinfra.backends import BACKENDS
from fedinfra.backends.base import Placement
from fedinfra.spec import Site


def test_every_backend_is_registered_under_its_name_with_a_test():
    assert list(BACKENDS) == ["libvirt", "aws", "ssh"]
    for name, backend in BACKENDS.items():
        assert backend.name == name
        assert issubclass(backend.placement, Placement)
        # the `sites` key's description lists every field of the placement
        assert set(backend.placement.model_fields) <= set(re.findall(r"\w+", backend.summary))
        assert (Path(__file__).parent / f"test_{name}.py").is_file(), name


def test_a_site_offers_one_placement_per_backend():
    fields = list(Site.model_fields)
    # who holds the password comes before the placements, as a stack file lists a site
    identity = ["name", "fc_user", "coordinator", "credentials", "password_file"]
    assert fields == [*identity, *BACKENDS, "workdir"]
    for name, backend in BACKENDS.items():
        assert Site.model_fields[name].annotation == backend.placement | None
