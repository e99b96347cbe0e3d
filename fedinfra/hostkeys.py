"""Pinned SSH host keys, parsed for real before any resource is declared.

A pinned key is the only thing between fedstack and a machine-in-the-middle, and pulumi-command
reads it only when it dials, deep inside `pulumi up`. So every key the stack config pins (a
bring-your-own host, a hypervisor, a jump host) is decoded here: the base64 must be well formed,
the key type written in front must be the one inside the blob, and the key material must load.

Only ed25519 and ECDSA keys are accepted. pulumi-command verifies an `ssh-rsa` host key with the
SHA-1 `ssh-rsa` signature only, which OpenSSH 8.8 and later no longer offer, so such a pin can
never succeed against a current server. Pure functions; no Pulumi here.
"""

from __future__ import annotations

import base64
import binascii
import struct

from cryptography.hazmat.primitives.serialization import load_ssh_public_key

#: the key types pulumi-command can verify against a current OpenSSH server
ACCEPTED = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")

RSA_REFUSED = (
    "ssh-rsa host keys cannot be pinned: pulumi-command verifies them only with the SHA-1 "
    "ssh-rsa signature, which OpenSSH 8.8 and later refuse; pin the host's ed25519 or ECDSA key "
    "(`ssh-keyscan -t ed25519 HOST`)"
)


def _blob_type(blob: bytes) -> str:
    """The key type the blob itself names (its first length-prefixed string)."""
    if len(blob) < 4:
        raise ValueError("the key blob is too short")
    (length,) = struct.unpack(">I", blob[:4])
    if length > len(blob) - 4 or length > 64:
        raise ValueError("the key blob is malformed")
    return blob[4 : 4 + length].decode("ascii", errors="replace")


def check_host_key(value: str) -> str:
    """`type base64 [comment]` as known_hosts holds it without the host name; returns it stripped.

    Raises ValueError with what is wrong (never the key itself, which is long and useless in a
    one-line message).
    """
    parts = value.strip().split()
    if len(parts) < 2:
        raise ValueError("must be an OpenSSH public key like 'ssh-ed25519 AAAA...'")
    kind, data = parts[0], parts[1]
    if kind == "ssh-rsa":
        raise ValueError(RSA_REFUSED)
    if kind not in ACCEPTED:
        raise ValueError(f"key type {kind!r} is not one of {', '.join(ACCEPTED)}")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {kind} key is not valid base64 (copy it whole)") from None
    inside = _blob_type(blob)
    if inside != kind:
        raise ValueError(f"says {kind} but the key inside is {inside!r}")
    try:
        load_ssh_public_key(f"{kind} {data}".encode("ascii"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the {kind} key does not load: {exc}") from None
    return value.strip()
