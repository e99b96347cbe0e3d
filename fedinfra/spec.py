"""The federation spec: which sites exist, who they are on FeatureCloud, and where they run.

One spec for every stack (sim, cloud, mixed): a site names exactly one registered backend
(`fedinfra.backends`: libvirt, aws, ssh) and gives that backend's placement under its name.
Pydantic validates it at the edge, before any resource is declared, and `SpecError` carries
pydantic's report as ONE line naming the site and the field (`site 'bob': libvirt.memory: must
be >= 1024`), because that line is what `pulumi up` shows. The functions here are pure; the
placement models come from the backend modules, which also hold their components.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from fedinfra.backends import BACKENDS
from fedinfra.backends.base import Placement
from fedinfra.backends.libvirt import Hypervisor, LibvirtPlacement
from fedinfra.inventory import check_host_path, check_site_name
from fedinfra.problems import Problem, one_line

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SpecError(ValueError):
    """A wrong federation spec or stack config, as one line for the person running `pulumi up`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_workdir(value: str) -> str:
    """A dedicated absolute directory: cleanup removes it, so never `/` or a top-level dir."""
    if not value.startswith("/") or value.rstrip("/").count("/") < 2 or "\n" in value:
        raise ValueError(f"{value!r} must be an absolute path at least two levels deep")
    return value


class SiteBase(_Strict):
    """One participant of the federation; `Site` adds one optional field per backend."""

    name: str
    #: the site's FeatureCloud account (an e-mail address)
    fc_user: str
    coordinator: bool = False
    #: `host`: the site's FeatureCloud password stays on its host, in `password_file`
    #: (fedinfra.inventory.SiteEntry); the runner never holds it
    credentials: Literal["runner", "host"] = "runner"
    password_file: str | None = None
    if TYPE_CHECKING:
        #: fedstack's working directory on the host; None = the stack's `workdir` (declared
        #: on `Site`, after the placements, so problems keep the order of the stack file)
        workdir: str | None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_site_name(value)

    @field_validator("fc_user")
    @classmethod
    def _fc_user(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address (a FeatureCloud account)")
        return value

    @field_validator("workdir", check_fields=False)
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None:
            check_workdir(value)
        return value

    @field_validator("password_file")
    @classmethod
    def _password_file(cls, value: str | None) -> str | None:
        return None if value is None else check_host_path(value)

    @model_validator(mode="after")
    def _held_site(self) -> SiteBase:
        if self.credentials == "host" and self.password_file is None:
            raise ValueError("credentials host needs password_file (its path on the host)")
        if self.credentials == "runner" and self.password_file is not None:
            raise ValueError("password_file is only for credentials host")
        if self.credentials == "host" and self.coordinator:
            raise ValueError(
                "the coordinator must have credentials runner (the runner creates the project "
                "and the tokens as that user)"
            )
        return self

    @model_validator(mode="after")
    def _one_placement(self) -> SiteBase:
        given = [k for k in BACKENDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(BACKENDS)}"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self

    @property
    def backend(self) -> str:
        """The name of the backend the site runs on ('libvirt', 'aws', 'ssh', ...)."""
        return next(k for k in BACKENDS if getattr(self, k) is not None)

    @property
    def placement(self) -> Placement:
        """The site's block for its backend."""
        placement: Placement = getattr(self, self.backend)
        return placement


if TYPE_CHECKING:
    Site = SiteBase
else:
    # one optional placement per registered backend, in registry order, then the workdir (the
    # order in which pydantic reports problems)
    Site = create_model(
        "Site",
        __base__=SiteBase,
        __module__=__name__,
        **{name: (b.placement | None, None) for name, b in BACKENDS.items()},
        workdir=(str | None, None),
    )


class FederationSpec(_Strict):
    sites: list[Site] = Field(min_length=1)
    #: the libvirt backend's hosts (`fedstack:hypervisors`)
    hypervisors: list[Hypervisor] = Field(
        default_factory=lambda: [Hypervisor(name="local", uri="qemu:///system")]
    )

    @model_validator(mode="after")
    def _consistent(self) -> FederationSpec:
        for kind, names in (
            ("site", [s.name for s in self.sites]),
            ("hypervisor", [h.name for h in self.hypervisors]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique: {', '.join(dupes)} repeated")
        coordinators = [s.name for s in self.sites if s.coordinator]
        if len(coordinators) != 1:
            raise ValueError(
                f"exactly one site must have coordinator: true, found {len(coordinators)}"
                + (f" ({', '.join(coordinators)})" if coordinators else "")
            )
        for name, backend in BACKENDS.items():
            backend.check([(s.name, s.placement) for s in self.sites_on(name)])
        known = {h.name for h in self.hypervisors}
        for hv, site in self._hypervisor_names():
            if hv not in known:
                raise ValueError(
                    f"site {site!r}: libvirt.hypervisor: {hv!r} is not "
                    f"in hypervisors ({', '.join(sorted(known))})"
                )
        return self

    def _hypervisor_names(self) -> list[tuple[str, str]]:
        """(hypervisor, site) for every libvirt site."""
        named = []
        for site in self.sites_on("libvirt"):
            placement = site.placement
            assert isinstance(placement, LibvirtPlacement)
            named.append((placement.hypervisor, site.name))
        return named

    def used_hypervisors(self) -> list[Hypervisor]:
        """Hypervisors that carry at least one site, in spec order (one provider each)."""
        used = {hv for hv, _ in self._hypervisor_names()}
        return [h for h in self.hypervisors if h.name in used]

    def sites_on(self, backend: str) -> list[Site]:
        return [s for s in self.sites if s.backend == backend]


def _where(raw: Mapping[str, Any]) -> Callable[[Problem], str]:
    """Names the place of a problem: sites and hypervisors by their names, then the field."""

    def who(kind: str, index: int) -> str:
        items = raw.get(kind + "s")
        item = items[index] if isinstance(items, list) and index < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        return f"{kind} {name!r}" if isinstance(name, str) else f"{kind} #{index + 1}"

    def where(problem: Problem) -> str:
        parts = list(problem.loc)
        if len(parts) >= 2 and parts[0] in ("sites", "hypervisors") and isinstance(parts[1], int):
            place, parts = who(str(parts[0]).removesuffix("s"), parts[1]), parts[2:]
        elif not parts and problem.message.startswith("site '"):
            return ""  # a cross-check that already names its site and field
        else:
            place = "federation"
        return f"{place}: {'.'.join(str(p) for p in parts)}" if parts else place

    return where


def parse_spec(raw: Mapping[str, Any]) -> FederationSpec:
    """Validate {sites, hypervisors}; a wrong spec raises SpecError with one line."""
    try:
        return FederationSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(one_line(exc, _where(raw), noun="problem", plain=True)) from None
