"""Account actions on a real directory (LDAP, e.g. OpenLDAP) through ldap3.

Every user-supplied name goes into filters escaped (RFC 4515) and is matched only
against the configured naming attribute under the configured base, so `*` or `)(`
in a user name finds nobody instead of everybody. Unlock clears the password-policy
lock (`pwdAccountLockedTime`, OpenLDAP ppolicy / draft-behera); reset uses the LDAP
Password Modify extended operation, so the server hashes the password its own way.

The catalogue's fulfilment runbooks act here too: a disk quota is an integer attribute of
the account (its name is configured: file servers and home-directory provisioners read
it from the directory), and a software entitlement is membership of a group under a
configured software branch (deployment tools install what a member is entitled to).
"""

from __future__ import annotations

from dataclasses import dataclass

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE, Connection, Server
from ldap3.core.exceptions import (
    LDAPAttributeOrValueExistsResult,
    LDAPException,
    LDAPNoSuchAttributeResult,
)
from ldap3.utils.conv import escape_filter_chars

LOCK = "pwdAccountLockedTime"


class DirectoryError(RuntimeError):
    """The directory refused or could not be reached (message without secrets)."""


@dataclass(frozen=True)
class Account:
    dn: str
    username: str
    mail: str | None
    locked: bool


class Directory:
    def __init__(
        self,
        url: str,
        base_dn: str,
        bind_dn: str,
        password: str,
        user_attr: str = "uid",
        timeout: int = 5,
        quota_attr: str | None = None,
        quota_class: str | None = None,
        software_base: str | None = None,
    ) -> None:
        self.server = Server(url.rstrip("/"), connect_timeout=timeout)
        self.base_dn, self.bind_dn, self._password = base_dn, bind_dn, password
        self.user_attr, self.timeout = user_attr, timeout
        # None: the directory holds no quotas / no software entitlements (the runbook says so)
        self.quota_attr, self.quota_class = quota_attr, quota_class
        self.software_base = software_base

    def _connect(self) -> Connection:
        try:
            return Connection(
                self.server,
                self.bind_dn,
                self._password,
                auto_bind=True,
                receive_timeout=self.timeout,
                raise_exceptions=True,
            )
        except LDAPException as exc:
            raise DirectoryError(f"directory bind failed: {type(exc).__name__}") from None

    def find(self, username: str) -> Account | None:
        """The one account with this exact name, or None (also for ambiguous names)."""
        if not username or len(username) > 128:
            return None
        query = f"({self.user_attr}={escape_filter_chars(username)})"
        with self._connect() as conn:
            conn.search(self.base_dn, query, SUBTREE, attributes=["mail", self.user_attr, LOCK])
            entries = list(conn.entries)
        if len(entries) != 1:
            return None
        entry = entries[0]
        attrs = entry.entry_attributes_as_dict
        mail = (attrs.get("mail") or [None])[0]
        return Account(entry.entry_dn, username, mail, bool(attrs.get(LOCK)))

    def reset_password(self, account: Account, new_password: str) -> None:
        with self._connect() as conn:
            try:
                conn.extend.standard.modify_password(account.dn, new_password=new_password)
            except LDAPException as exc:
                raise DirectoryError(f"password change refused: {type(exc).__name__}") from None

    def unlock(self, account: Account) -> bool:
        """Clear the lock; False when the account was not locked."""
        with self._connect() as conn:
            conn.search(account.dn, "(objectClass=*)", BASE, attributes=[LOCK])
            if not conn.entries or not conn.entries[0].entry_attributes_as_dict.get(LOCK):
                return False
            try:
                conn.modify(account.dn, {LOCK: [(MODIFY_DELETE, [])]})
            except LDAPException as exc:
                raise DirectoryError(f"unlock refused: {type(exc).__name__}") from None
        return True

    def group(self, name: str, base: str | None = None) -> tuple[str, list[str], list[str]] | None:
        """(dn, owner DNs, member DNs) of the one group (groupOfNames) named `name` under
        `base` (default: the whole directory base)."""
        if not name or len(name) > 128:
            return None
        query = f"(&(objectClass=groupOfNames)(cn={escape_filter_chars(name)}))"
        with self._connect() as conn:
            conn.search(base or self.base_dn, query, SUBTREE, attributes=["owner", "member"])
            entries = list(conn.entries)
        if len(entries) != 1:
            return None
        attrs = entries[0].entry_attributes_as_dict
        return entries[0].entry_dn, list(attrs.get("owner", [])), list(attrs.get("member", []))

    def owner_names(self, owner_dns: list[str]) -> set[str]:
        """The user names (naming attribute) of a group's owners."""
        names = set()
        with self._connect() as conn:
            for dn in owner_dns:
                conn.search(dn, "(objectClass=*)", BASE, attributes=[self.user_attr])
                for entry in conn.entries:
                    names.update(entry.entry_attributes_as_dict.get(self.user_attr, []))
        return names

    def add_member(self, group_dn: str, account: Account) -> bool:
        """Add the account to the group; False when it already was a member."""
        return self._change_member(group_dn, account, MODIFY_ADD, LDAPAttributeOrValueExistsResult)

    def remove_member(self, group_dn: str, account: Account) -> bool:
        """Take the account out of the group (a rollback); False when it was not in it."""
        return self._change_member(group_dn, account, MODIFY_DELETE, LDAPNoSuchAttributeResult)

    def _change_member(
        self, group_dn: str, account: Account, op: str, already: type[LDAPException]
    ) -> bool:
        """One membership change; `already` is the directory's answer that it was made."""
        with self._connect() as conn:
            try:
                conn.modify(group_dn, {"member": [(op, [account.dn])]})
            except already:
                return False
            except LDAPException as exc:
                raise DirectoryError(f"group change refused: {type(exc).__name__}") from None
        return True

    def software(self, name: str) -> tuple[str, list[str], list[str]] | None:
        """The entitlement group of the software named `name`, if the catalogue has one."""
        if not self.software_base:
            raise DirectoryError("no software branch configured (BATON_LDAP_SOFTWARE_BASE)")
        return self.group(name, self.software_base)

    def quota(self, account: Account) -> int | None:
        """The account's disk quota in GB as the directory holds it (None: not set)."""
        attr = self._quota_attr()
        with self._connect() as conn:
            conn.search(account.dn, "(objectClass=*)", BASE, attributes=[attr])
            values = conn.entries[0].entry_attributes_as_dict.get(attr) if conn.entries else None
        if not values:
            return None
        try:
            return int(str(values[0]).strip())
        except ValueError:
            raise DirectoryError(f"{attr} of the account is not a number of GB") from None

    def set_quota(self, account: Account, gb: int | None) -> None:
        """Write the quota (None removes it, as a rollback to "never set" does)."""
        attr = self._quota_attr()
        change: dict[str, list[tuple[str, list[str]]]] = {
            attr: [(MODIFY_REPLACE, [] if gb is None else [str(int(gb))])]
        }
        with self._connect() as conn:
            try:
                if gb is not None and self.quota_class:
                    conn.search(account.dn, "(objectClass=*)", BASE, attributes=["objectClass"])
                    classes = conn.entries[0].entry_attributes_as_dict.get("objectClass", [])
                    if self.quota_class.lower() not in {str(c).lower() for c in classes}:
                        change["objectClass"] = [(MODIFY_ADD, [self.quota_class])]
                conn.modify(account.dn, change)
            except LDAPException as exc:
                raise DirectoryError(f"quota change refused: {type(exc).__name__}") from None

    def _quota_attr(self) -> str:
        if not self.quota_attr:
            raise DirectoryError("no quota attribute configured (BATON_LDAP_QUOTA_ATTR)")
        return self.quota_attr

    def check_password(self, account: Account, password: str) -> bool:
        """Whether the account binds with this password (used to verify a reset)."""
        try:
            with Connection(self.server, account.dn, password, auto_bind=True):
                return True
        except LDAPException:
            return False
