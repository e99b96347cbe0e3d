"""The program's edge: stack config in, Federation built, outputs out.

Everything the CLI hands the program is read here once: plain keys into StackSettings (one line
on error, via pulumi.RunError so `pulumi up` prints no traceback), secret keys as secret
Outputs, bring-your-own key files from disk. `__main__.py` only calls `main()`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from fedinfra.backends import BACKENDS
from fedinfra.components.federation import Federation, Secrets
from fedinfra.settings import CONFIG_KEYS, PROJECT, StackSettings, load_settings
from fedinfra.spec import SpecError


def _plain_config() -> dict[str, str]:
    """Every `fedstack:*` value except the secret keys (read as Outputs instead)."""
    secret_keys = {f"{PROJECT}:{k}" for k, v in CONFIG_KEYS.items() if v.secret}
    # the language host fills CONFIG; PULUMI_CONFIG is the SDK's process-wide fallback
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {
        k: str(v) for k, v in merged.items() if k.startswith(PROJECT + ":") and k not in secret_keys
    }


def _read_key(path_text: str, where: str) -> tuple[pulumi.Output[str], str]:
    """A private key file the config names, read now so a missing one is one clear line:
    its text (secret) and resolved path."""
    path = Path(os.path.expanduser(path_text))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{where}: cannot read {path}: {exc.strerror}") from None
    if "PRIVATE KEY" not in text:
        raise SpecError(f"{where}: {path} holds no private key")
    return pulumi.Output.secret(text), str(path.resolve())


def _read_key_files(
    settings: StackSettings,
) -> tuple[dict[str, pulumi.Output[str]], dict[str, str]]:
    """Private key files the sites name (bring-your-own hosts): texts and paths, by site."""
    texts: dict[str, pulumi.Output[str]] = {}
    paths: dict[str, str] = {}
    for site in settings.spec.sites:
        key_file = BACKENDS[site.backend].key_file(site.placement)
        if key_file is not None:
            where = f"site {site.name!r}: {site.backend}.key_file"
            texts[site.name], paths[site.name] = _read_key(key_file, where)
    return texts, paths


def _read_jump_keys(
    settings: StackSettings,
) -> tuple[dict[str, pulumi.Output[str]], dict[str, str]]:
    """Private key files of the jump hosts: texts and paths, by the file as the config names it."""
    texts: dict[str, pulumi.Output[str]] = {}
    paths: dict[str, str] = {}
    for backend in BACKENDS.values():
        for where, jump in backend.jumps(settings):
            if jump.key_file not in texts:
                texts[jump.key_file], paths[jump.key_file] = _read_key(jump.key_file, where)
    return texts, paths


def build(stack: str | None = None) -> Federation:
    """Read the config and declare the federation; a wrong config raises pulumi.RunError."""
    stack = stack or pulumi.get_stack()
    try:
        settings = load_settings(_plain_config())
        key_texts, key_paths = _read_key_files(settings)
        jump_texts, jump_paths = _read_jump_keys(settings)
    except SpecError as exc:
        raise pulumi.RunError(str(exc)) from None
    cfg = pulumi.Config(PROJECT)
    passwords: pulumi.Output[Mapping[str, str]] | None = cfg.get_secret_object("fcPasswords")
    secrets = Secrets(
        passwords=passwords,
        pip_index_url=cfg.get_secret("pipIndexUrl"),
        key_texts=key_texts,
        key_files=key_paths,
        jump_keys=jump_texts,
        jump_key_files=jump_paths,
    )
    return Federation(stack, settings, secrets, stack=stack)


def main() -> None:
    """The whole program: build, then export what the runner and the user read."""
    federation = build()
    pulumi.export("inventory", federation.inventory)
    pulumi.export("sites", federation.sites)
