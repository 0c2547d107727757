"""Throwaway real services for the desk's integration tests: an OpenLDAP slapd and a
Dovecot IMAP server, each with its own config in a temp dir on a free port.

Missing binaries skip the test, except on CI, where they are required (.ci/run installs
them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

BASE = "dc=example,dc=org"
ADMIN = f"cn=admin,{BASE}"
ADMIN_PW = "admin-secret"


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None
    )
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{binary} is required on CI (apt-get install {package})")
        pytest.skip(f"{binary} not installed (apt-get install {package})")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(200):
        if proc.poll() is not None and proc.returncode not in (0, None):
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)  # waiting for a real server to bind, not for test logic
    raise RuntimeError(f"{what} did not listen on {port}")


# A site's own quota attribute (test-only OIDs): an integer number of GB on an auxiliary
# class, as a home-directory provisioner would read it.
QUOTA_SCHEMA = """attributetype ( 1.3.6.1.4.1.32473.1.1 NAME 'diskQuotaGB'
  DESC 'disk quota in GB' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.2.1 NAME 'quotaAccount' AUXILIARY MAY diskQuotaGB )
"""
SOFTWARE = f"ou=software,{BASE}"

SLAPD_CONF = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {dir}/quota.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw {pw}
directory {dir}/db
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{base}"
"""

SEED = """dn: {base}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{base}
objectClass: organizationalUnit
ou: people

dn: ou=policies,{base}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{base}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3

dn: ou=groups,{base}
objectClass: organizationalUnit
ou: groups

dn: cn=finance,ou=groups,{base}
objectClass: groupOfNames
cn: finance
owner: uid=bob,ou=people,{base}
member: uid=bob,ou=people,{base}

dn: ou=software,{base}
objectClass: organizationalUnit
ou: software

dn: cn=Inkscape 1.3,ou=software,{base}
objectClass: groupOfNames
cn: Inkscape 1.3
owner: uid=bob,ou=people,{base}
member: uid=bob,ou=people,{base}

dn: uid=alice,ou=people,{base}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Anders
mail: alice@example.org
userPassword: alice-old-password

dn: uid=bob,ou=people,{base}
objectClass: inetOrgPerson
objectClass: quotaAccount
diskQuotaGB: 20
uid: bob
cn: Bob
sn: Berg
mail: bob@example.org
userPassword: bob-old-password
"""


def start_slapd(tmp: Path) -> tuple[str, subprocess.Popen]:
    """A slapd with two people (alice, bob), a lockout policy, a quota attribute and a
    software branch; returns its URL."""
    slapd = need("slapd", "slapd ldap-utils")
    need("ldapadd", "ldap-utils")
    (tmp / "db").mkdir(parents=True)
    (tmp / "quota.schema").write_text(QUOTA_SCHEMA)
    conf = tmp / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(dir=tmp, base=BASE, admin=ADMIN, pw=ADMIN_PW))
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [slapd, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(port, proc, "slapd")
    seed = tmp / "seed.ldif"
    seed.write_text(SEED.format(base=BASE))
    subprocess.run(
        ["ldapadd", "-x", "-H", url, "-D", ADMIN, "-w", ADMIN_PW, "-f", str(seed)],
        check=True,
        capture_output=True,
    )
    return url, proc


DOVECOT_CONF = """base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def start_dovecot(user: str, password: str) -> tuple[int, subprocess.Popen, Path]:
    """A Dovecot serving one mailbox over plain IMAP on a free port (as `nobody` when run
    by root: Dovecot refuses mail processes as root). Its directory is its own, readable
    by Dovecot's unprivileged services (pytest's are 0700 under root); the caller
    removes it."""
    dovecot = need("dovecot", "dovecot-imapd")
    tmp = Path(tempfile.mkdtemp(prefix="baton-dovecot-"))
    tmp.chmod(0o755)
    uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    for sub in ("run", "state", f"home/{user}"):
        (tmp / sub).mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(tmp / "home" / user, uid, gid)
        os.chown(tmp / "home", uid, gid)
    (tmp / "users").write_text(f"{user}:{{PLAIN}}{password}\n")
    port = free_port()
    conf = tmp / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(dir=tmp, uid=uid, gid=gid, port=port))
    proc = subprocess.Popen(
        [dovecot, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(port, proc, "dovecot")
    except RuntimeError as exc:
        log = tmp / "dovecot.log"
        raise RuntimeError(f"{exc}: {log.read_text()[-2000:] if log.exists() else ''}") from None
    return port, proc, tmp
