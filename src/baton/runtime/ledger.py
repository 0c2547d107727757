"""Open the database with its audit ledger: the key that signs records and the witness
that keeps copies of the head, both from settings and both outside the database."""

from __future__ import annotations

from baton.kernel.audit import LEDGER, Ledger
from baton.kernel.keyring import Witness, load_keyring
from baton.runtime.settings import Settings
from baton.store.db import Database


def ledger(settings: Settings, create_key: bool = True) -> Ledger:
    """The ledger for these settings; the key file is created on first use unless
    `create_key` is off (verifying must not mint a key that proves nothing)."""
    keyring = load_keyring(settings.audit_key_path, create=create_key)
    witness = None
    if settings.audit_witness_path is not None or settings.audit_witness_url:
        witness = Witness(settings.audit_witness_path, settings.audit_witness_url)
    return Ledger(keyring, witness, settings.audit_witness_every)


def open_database(settings: Settings, create_key: bool = True) -> Database:
    """The database whose sessions sign every audit record they append."""
    return Database(settings.db_url, session_info={LEDGER: ledger(settings, create_key)})
