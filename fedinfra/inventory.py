"""The inventory: everything the runner needs to know about the federation's machines.

This module is the contract between the two halves of fedstack. The stack exports it as the
output `inventory`; the runner reads it back (Automation API, `pulumi stack output`, or a file).
It imports neither pulumi nor the runner, so both sides can depend on it and it can be checked
on its own. The version field lets a runner refuse an inventory it does not understand instead
of misreading it.
"""

from __future__ import annotations

import posixpath
import re
import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

INVENTORY_VERSION = 1

SITE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def check_site_name(name: str) -> str:
    """A site name as every part uses it (stack config, inventory, workflow, folders)."""
    if not SITE_NAME.fullmatch(name):  # fullmatch: `$` would let a trailing newline through
        raise ValueError("must be lowercase letters, digits and '-', starting with a letter")
    return name


#: what `featurecloud controller start` runs on a provisioned host; `{data_dir}`, `{port}` and
#: `{name}` are filled in from the site's ControllerSpec by `ControllerSpec.render`.
DEFAULT_START = "featurecloud controller start {name} --port {port} --data-dir {data_dir}"
DEFAULT_STOP = "featurecloud controller stop {name}"
#: where provisioning installs fcapi on a host with a host-held site, under the workdir
FCAPI_VENV = "fcapi"
#: the placeholders a start/stop template may use
PLACEHOLDERS = ("name", "port", "data_dir")
#: a controller's name is a word in shell lines and file names on the host
CONTROLLER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_template(template: str) -> str:
    """A start/stop template whose placeholders are known: a typo found now, not on the host."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    for field in fields:
        if field not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{field}}} (known: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                + ")"
            )
    return template


def check_host_path(path: str) -> str:
    """An absolute path on a host, one line (it goes into shell lines and messages)."""
    if not path.startswith("/"):
        raise ValueError("must be an absolute path")
    if any(c in path for c in "\n\r\x00"):
        raise ValueError("must not hold a newline or NUL")
    return path


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SshAccess(Strict):
    """How the runner reaches a host. Host keys are pinned: an unknown key is never accepted."""

    address: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    #: OpenSSH private key text, or None when `private_key_file` names a file on the
    #: runner's machine
    private_key: SecretStr | None = None
    private_key_file: str | None = None
    #: OpenSSH public host keys, `"ssh-ed25519 AAAA..."`, at least one
    host_keys: list[str] = Field(min_length=1)
    #: a host to tunnel through (one hop), its own host keys pinned; None: dial directly
    jump: SshAccess | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> SshAccess:
        if (self.private_key is None) == (self.private_key_file is None):
            raise ValueError("give exactly one of private_key and private_key_file")
        return self

    @model_validator(mode="after")
    def _one_hop(self) -> SshAccess:
        if self.jump is not None and self.jump.jump is not None:
            raise ValueError("a jump host must be dialled directly: one hop only")
        return self

    @field_validator("host_keys")
    @classmethod
    def _openssh_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            parts = key.split()
            if len(parts) < 2 or not (parts[0].startswith("ssh-") or parts[0].startswith("ecdsa-")):
                raise ValueError(f"not an OpenSSH public host key: {key[:40]!r}")
        return keys


SshAccess.model_rebuild()


class ControllerSpec(Strict):
    """How a site's FeatureCloud controller is started, stopped and found on its host."""

    name: str = "fc-controller"
    port: int = Field(default=8000, ge=1, le=65535)
    #: absolute path on the host; the controller keeps uploads, results and site_info.json there
    data_dir: str
    start: str = DEFAULT_START
    stop: str = DEFAULT_STOP

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not CONTROLLER_NAME.fullmatch(name):
            raise ValueError("must be letters, digits, '.', '_' and '-' (at most 64)")
        return name

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, path: str) -> str:
        return check_host_path(path)

    @field_validator("start", "stop")
    @classmethod
    def _template(cls, template: str) -> str:
        return check_template(template)

    def render(self, template: str) -> str:
        """Fill a start/stop template with this controller's name, port and data dir."""
        return template.format(name=self.name, port=self.port, data_dir=self.data_dir)

    @property
    def start_command(self) -> str:
        return self.render(self.start)

    @property
    def stop_command(self) -> str:
        return self.render(self.stop)


class SiteEntry(Strict):
    name: str
    #: the site's FeatureCloud user (an e-mail address)
    fc_user: str
    role: Literal["coordinator", "participant"]
    #: `ssh`: a machine reached over SSH; `local`: a directory and processes on the runner's machine
    transport: Literal["ssh", "local"] = "ssh"
    ssh: SshAccess | None = None
    #: fedstack's working directory on the host (absolute)
    workdir: str
    controller: ControllerSpec
    #: who holds the site's FeatureCloud password: `runner` (the .env, the environment, the
    #: stack's secrets) or `host` (a 0600 file on the site's host, `password_file`; the host
    #: logs in and joins itself, and the runner never sees the password)
    credentials: Literal["runner", "host"] = "runner"
    #: absolute path of the password file on the host; only with `credentials: host`
    password_file: str | None = None
    #: the python on the host that has fcapi (provisioning puts one in `<workdir>/fcapi`);
    #: None: that one
    fcapi_python: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_site_name(name)

    @field_validator("password_file", "fcapi_python")
    @classmethod
    def _host_paths(cls, path: str | None) -> str | None:
        return None if path is None else check_host_path(path)

    @model_validator(mode="after")
    def _held_needs_a_file(self) -> SiteEntry:
        if self.credentials == "host" and self.password_file is None:
            raise ValueError(
                f"site {self.name}: credentials host needs password_file (its path on the host)"
            )
        if self.credentials == "runner" and self.password_file is not None:
            raise ValueError(
                f"site {self.name}: password_file is only for credentials host "
                "(the runner holds this site's password)"
            )
        return self

    @property
    def host_held(self) -> bool:
        """The site's password lives only on its host."""
        return self.credentials == "host"

    @property
    def host_fcapi_python(self) -> str:
        """The host's python with fcapi: the inventory's, or where provisioning installs it."""
        return self.fcapi_python or posixpath.join(self.workdir, FCAPI_VENV, "bin", "python")

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, path: str) -> str:
        return check_host_path(path)

    def host(self) -> str:
        """The machine the site's controller runs on, as the runner tells machines apart."""
        if self.transport == "local" or self.ssh is None:
            return "local"
        here = f"{self.ssh.address.lower()}:{self.ssh.port}"
        jump = self.ssh.jump
        # behind a jump, an address is only unique on that jump's side (two hypervisors'
        # NAT networks hand out the same addresses)
        return here if jump is None else f"{jump.address.lower()}:{jump.port}/{here}"

    @model_validator(mode="after")
    def _transport_needs_access(self) -> SiteEntry:
        if self.transport == "ssh" and self.ssh is None:
            raise ValueError(f"site {self.name}: transport ssh needs an ssh block")
        return self


#: the fields of a host-held site, left out of a site's JSON when at their defaults
HELD_FIELDS = ("credentials", "password_file", "fcapi_python")


class Inventory(Strict):
    version: int
    stack: str
    sites: list[SiteEntry] = Field(min_length=1)
    #: FeatureCloud passwords by user, when the stack's secret config holds them
    credentials: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != INVENTORY_VERSION:
            raise ValueError(
                f"inventory version {version} is not understood by this fedstack "
                f"(it reads version {INVENTORY_VERSION}); upgrade fedstack or re-run pulumi up"
            )
        return version

    @model_validator(mode="after")
    def _sites_consistent(self) -> Inventory:
        names = [s.name for s in self.sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique: {', '.join(dupes)} repeated")
        coordinators = [s.name for s in self.sites if s.role == "coordinator"]
        if len(coordinators) != 1:
            raise ValueError(
                f"exactly one site must coordinate, found {len(coordinators)}"
                + (f" ({', '.join(coordinators)})" if coordinators else "")
            )
        _check_shared(self.sites)
        self._check_held()
        return self

    def _check_held(self) -> None:
        """The coordinator's password is the runner's (it creates the project and the tokens),
        and no host-held user's password is carried here."""
        coordinator = self.coordinator
        if coordinator.host_held:
            raise ValueError(
                f"site {coordinator.name}: the coordinator must have credentials runner "
                "(the runner creates the project and the tokens as that user)"
            )
        for site in self.sites:
            if site.host_held and site.fc_user in self.credentials:
                raise ValueError(
                    f"site {site.name}: credentials hold a password for {site.fc_user}, whose "
                    "password stays on the site's host; remove it from fcPasswords"
                )

    @property
    def coordinator(self) -> SiteEntry:
        return next(s for s in self.sites if s.role == "coordinator")

    def site(self, name: str) -> SiteEntry:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_json_dict(self, reveal_secrets: bool = False) -> dict[str, object]:
        """Plain JSON data; secrets are masked unless `reveal_secrets` (for a 0600 file only)."""
        data = self.model_dump(mode="json")
        for raw in data["sites"]:
            # a runner-held site's entry reads (and digests, for a resume) as before these fields
            for name in HELD_FIELDS:
                if raw.get(name) == SiteEntry.model_fields[name].default:
                    del raw[name]
        if reveal_secrets:
            for site, raw in zip(self.sites, data["sites"], strict=True):
                if site.ssh is not None:
                    _reveal_key(site.ssh, raw["ssh"])
            data["credentials"] = {u: p.get_secret_value() for u, p in self.credentials.items()}
        return data


def _reveal_key(access: SshAccess, raw: dict[str, object]) -> None:
    """The login key in clear, the jump host's too (its own login may need its own key)."""
    if access.private_key is not None:
        raw["private_key"] = access.private_key.get_secret_value()
    if access.jump is not None:
        jump = raw["jump"]
        assert isinstance(jump, dict)
        _reveal_key(access.jump, jump)


def _check_shared(sites: list[SiteEntry]) -> None:
    """No two sites share what the platform or a host has only one of.

    Two sites with one FeatureCloud user are one member of the project (the mean comes out
    wrong); two sites on one controller (one host and port, or one data dir) overwrite each
    other's uploads and results. Either way the run cannot be right, so it is refused up front.
    """
    seen: dict[tuple[str, str], str] = {}
    for site in sites:
        host = site.host()
        data_dir = site.controller.data_dir.rstrip("/") or "/"
        shared = {
            "user": (
                site.fc_user.strip().lower(),
                f"FeatureCloud user {site.fc_user!r} (one site token)",
            ),
            "address": (
                f"{host}:{site.controller.port}",
                f"controller address {host}, port {site.controller.port}",
            ),
            "data_dir": (f"{host}:{data_dir}", f"controller data dir {data_dir} on {host}"),
        }
        for kind, (key, what) in shared.items():
            other = seen.setdefault((kind, key), site.name)
            if other != site.name:
                raise ValueError(
                    f"sites {other} and {site.name} share the {what}; give each its own"
                )
