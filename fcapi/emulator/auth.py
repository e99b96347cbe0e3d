"""simplejwt-style tokens and password hashing for the emulated website.

Tokens are real HS256 JWTs (`token_type`, `user_id`, `exp`, `jti`) signed with a secret kept
in the site state, so access tokens stay valid across a restart with `--state`, as they do
on a real server. Pure functions: the clock is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

REFRESH_LIFETIME = 24 * 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, token_type: str, user_id: int, now: float, lifetime: float) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {
        "token_type": token_type,
        "user_id": user_id,
        "iat": int(now),
        "exp": now + lifetime,
        "jti": secrets.token_hex(16),
    }
    payload = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


def read_token(secret: str, token: str, token_type: str, now: float) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token of `token_type`, else None."""
    try:
        header, payload, sig = token.split(".")
        want = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, _unb64(sig)):
            return None
        claims: dict[str, Any] = json.loads(_unb64(payload))
    except (ValueError, json.JSONDecodeError):
        return None
    if claims.get("token_type") != token_type or float(claims.get("exp", 0)) <= now:
        return None
    return claims


def hash_password(password: str, salt: str | None = None) -> str:
    """`salt$hash`; few PBKDF2 rounds because this guards test accounts, not real ones."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 2000).hex()
    return f"{salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_password(password, salt), stored)
