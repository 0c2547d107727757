"""Engines and sessions. SQLite runs in WAL mode so readers never block the writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, update
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; for SQLite make its directory and enable WAL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """An engine plus its session factory: the one handle domains receive."""

    def __init__(self, url: str, session_info: dict[str, Any] | None = None) -> None:
        """`session_info` is copied into every session's `info` (the audit ledger's keys
        and witness travel that way, so every writer signs)."""
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=session_info)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def lock_row(session: Session, model: Any, row_id: int) -> bool:
    """Take the write lock on one row before reading it (PostgreSQL row lock, SQLite's
    database lock), so read-modify-write on it cannot lose a concurrent update.
    Returns False when the row does not exist."""
    table = model.__table__
    key = next(iter(table.primary_key.columns))
    session.flush()
    done = session.execute(
        update(table)
        .where(key == row_id)
        .values({key.name: key})
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return done.rowcount == 1


def redact_url(url: str) -> str:
    """A database URL fit to print: the password is masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
