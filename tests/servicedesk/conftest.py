"""One SQLite platform per test module: starting one (migrations, catalogue) costs far
more than the desk tests themselves. Tests file their own tickets, so they do not share
state beyond the clock."""

from __future__ import annotations

import shutil

import pytest

from baton.kernel.clock import SimulatedClock
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from tests.conftest import ROOT, START
from tests.servicedesk.services import start_slapd


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    home = tmp_path_factory.mktemp("desk")
    shutil.copytree(ROOT / "runbooks", home / "runbooks")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'baton.db'}", runbooks_dir=home / "runbooks"
    )
    p = Platform(settings, SimulatedClock(START)).start()
    yield p
    p.close()


@pytest.fixture(scope="module")
def ldap_url(tmp_path_factory):
    """A throwaway slapd per module that asks for it (see services.start_slapd)."""
    url, proc = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield url
    proc.terminate()
    proc.wait(10)
