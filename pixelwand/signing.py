"""HMAC-signed, expiring URLs (local storage uploads/downloads, export links)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping


class SignatureError(Exception):
    """The URL's signature is missing, altered or expired."""


class Signer:
    def __init__(self, secret: bytes, purpose: str) -> None:
        # One derived key per purpose: an upload signature can never pass as a download's.
        self._key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()

    def sign(self, fields: Mapping[str, str]) -> str:
        message = "\n".join(f"{k}={fields[k]}" for k in sorted(fields)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, fields: Mapping[str, str], signature: str, expires: str) -> None:
        """Raise SignatureError unless `signature` signs `fields` (which include `expires`)."""
        if not signature or not hmac.compare_digest(self.sign(fields), signature):
            raise SignatureError("signature does not match")
        try:
            deadline = int(expires)
        except ValueError:
            raise SignatureError("signature does not match") from None
        if deadline < time.time():
            raise SignatureError("URL has expired")
