"""The audit ledger's secrets and its witness: what lives outside the database.

A hash chain alone proves nothing to someone who can write the database: they recompute
every hash. So each record also carries an HMAC-SHA256 under a key kept in a file the
database never sees (`Keyring`), and the chain's head is copied now and then to an
append-only place the database writer cannot rewrite (`Witness`: a file, a webhook).

The keyring file holds one `key_id hex-key` per line, oldest first; new records are
signed with the last one, and older ids stay so rotated-out keys still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

log = logging.getLogger("baton.audit")

KEY_BYTES = 32


class KeyringError(RuntimeError):
    """A keyring file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Keyring:
    """HMAC keys by id, oldest first; the newest signs."""

    keys: dict[str, bytes]
    path: Path | None = None

    @property
    def current(self) -> str:
        return next(reversed(self.keys))

    def mac(self, message: str, key_id: str | None = None) -> tuple[str, str]:
        """(key id, HMAC-SHA256 hex) of `message`, under `key_id` or the newest key."""
        key_id = key_id or self.current
        digest = hmac.new(self.keys[key_id], message.encode(), hashlib.sha256).hexdigest()
        return key_id, digest

    def check(self, key_id: str | None, message: str, mac: str | None) -> bool | None:
        """True if `mac` is right, False if not, None when the key id is not known here."""
        if key_id not in self.keys:
            return None
        return hmac.compare_digest(self.mac(message, key_id)[1], mac or "")


def _parse(path: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key_id, _, hex_key = line.partition(" ")
        try:
            key = bytes.fromhex(hex_key.strip())
        except ValueError:
            raise KeyringError(f"{path}:{number}: not `key_id hex-key`") from None
        if len(key) < 16 or not key_id.isprintable() or ":" in key_id:
            raise KeyringError(f"{path}:{number}: a key id without ':' and 16+ key bytes")
        keys[key_id] = key
    if not keys:
        raise KeyringError(f"{path}: holds no key")
    return keys


def _new_line() -> str:
    return f"k{secrets.token_hex(4)} {secrets.token_hex(KEY_BYTES)}\n"


def load_keyring(path: Path, create: bool = False) -> Keyring | None:
    """Read the keyring at `path`; with `create`, make it (mode 0600) if it is missing.
    Returns None when it is missing and not to be created."""
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two processes starting at once end up with one key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write("# Baton audit keys: `key_id hex-key`, newest last. Keep secret.\n")
                handle.write(_new_line())
                handle.flush()
                os.fsync(handle.fileno())
            log.info("audit key created", extra={"path": str(path)})
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("audit key file is readable by others", extra={"path": str(path)})
    return Keyring(_parse(path), path)


def rotate(path: Path) -> str:
    """Add a new key (it signs from now on); the old ones stay to verify old records."""
    if not path.exists():
        raise KeyringError(f"{path}: no keyring to rotate")
    line = _new_line()
    with open(path, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return line.split(" ", 1)[0]


# --- the witness ------------------------------------------------------------------------
def witness_message(seq: int, digest: str) -> str:
    return f"witness:{seq}:{digest}"


@dataclass
class Witness:
    """Where the chain's head is copied, outside the database: a file opened for append
    only, and optionally a webhook. Entries are signed, so a forged one shows."""

    file: Path | None = None
    url: str | None = None
    timeout_s: float = 2.0
    retry_after_s: float = 30.0  # a webhook that failed is not asked again before this
    _quiet_until: float = field(default=0.0, repr=False)

    def entry(self, keyring: Keyring, seq: int, digest: str, at: str) -> dict[str, Any]:
        key_id, mac = keyring.mac(witness_message(seq, digest))
        return {"seq": seq, "hash": digest, "key_id": key_id, "mac": mac, "at": at}

    def write_file(self, entry: dict[str, Any], sync: bool = True) -> None:
        """Append one entry; `sync` waits for the disk (the heartbeat's copy does; the
        one on the commit path leaves it to the OS, so appends stay fast)."""
        if self.file is None:
            return
        line = orjson.dumps(entry) + b"\n"
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)  # one write of one line: whole, even with other writers
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("audit witness file not written", extra={"problem": str(exc)})

    def post(self, entry: dict[str, Any]) -> bool:
        """Send the entry to the webhook; False (and a pause, so a dead receiver does not
        stall every heartbeat) when it fails. The next success carries the newer head."""
        if not self.url:
            return True
        if time.monotonic() < self._quiet_until:
            return False
        try:
            response = httpx.post(self.url, json=entry, timeout=self.timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self._quiet_until = time.monotonic() + self.retry_after_s
            log.error("audit witness webhook failed", extra={"problem": str(exc)})
            return False
        return True


def read_witness(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, entry) for each line of a witness file; None for a line that is
    not an entry at all."""
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield number, None
                continue
            ok = isinstance(entry, dict) and isinstance(entry.get("seq"), int)
            yield number, entry if ok else None
