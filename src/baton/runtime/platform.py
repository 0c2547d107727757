"""One running Baton: the composition root that builds the parts, starts and stops them.

Beside it, each with one job: `config` (live configuration), `drain` (the inbox),
`scheduler` (the heartbeat's jobs), `dispatch` (what the task backend runs) and
`commands` (what people do). Edges reach the parts through a Platform; nothing here
holds a rule of its own.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from baton.act import executions, heartbeat
from baton.kernel.clock import Clock
from baton.runtime.commands import Commands
from baton.runtime.config import LiveConfig
from baton.runtime.desk import Desk
from baton.runtime.dispatch import Dispatch
from baton.runtime.drain import Drain
from baton.runtime.intake import Intake
from baton.runtime.ledger import open_database
from baton.runtime.pipeline import Observer, Pipelines
from baton.runtime.scheduler import Job, Scheduler, every, standard_jobs
from baton.runtime.settings import Settings
from baton.runtime.tasks import TaskBackend, make_backend
from baton.runtime.watch import Watch
from baton.store.migrate import upgrade

# How often the heartbeat reviews the trust ledger (it reads every decided proposal).
TRUST_PERIOD = timedelta(minutes=15)


class Platform:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        targets: dict[str, Any] | None = None,
        backend: TaskBackend | None = None,
        observer: Observer | None = None,
        trust_moves: bool = True,
        triage_settle: timedelta = timedelta(seconds=60),
    ) -> None:
        self.settings, self.clock = settings, clock
        self.db = open_database(settings)  # its sessions sign audit records
        self.backend = backend or make_backend(settings)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.heartbeat = heartbeat.Heartbeat(
            self.db, clock.now, self.worker, settings.execution_lease_s / 3
        )
        self.intake = Intake(self.db, clock)
        self.config = LiveConfig(settings, self.db, clock)
        self.dispatch = Dispatch(
            settings,
            self.db,
            clock,
            self.backend,
            self.config,
            self.heartbeat,
            self.worker,
            targets or {},
            observer,
        )
        self.pipelines = Pipelines.build(self.config, self.dispatch.queue, targets or {})
        self.drain = Drain(
            settings, self.db, clock, self.intake, self.pipelines, self.config, observer
        )
        self.desk = Desk(
            settings,
            self.db,
            clock,
            self.config,
            observer,
            self.dispatch.raised,
            self.drain.ingest,  # a burst of similar tickets is correlated as an Event
        )
        self.commands = Commands(
            self.db, clock, self.config, self.pipelines, self.dispatch, observer, self.desk
        )
        self.watch = Watch(settings, clock, self.drain, observer)
        # The heartbeat's trust review writes demotions into the policy file; the demo,
        # which shares the checkout's runbooks directory, turns it off.
        trust = every(clock, TRUST_PERIOD, self.commands.review_trust if trust_moves else list)
        self.scheduler = Scheduler(
            [
                *standard_jobs(
                    self.db,
                    clock,
                    self.config,
                    self.drain,
                    self.pipelines,
                    self.dispatch,
                    observer,
                    triage_settle,
                    self.watch,
                ),
                *self.desk.jobs(),
                Job("trust ledger", "learn", trust),
            ]
        )

    def start(self, migrate: bool = True) -> Platform:
        """Migrate the schema, load runbooks and policy, recover from a restart."""
        if migrate:
            upgrade(self.db.url)
        self.config.reload()
        self.recover()
        return self

    def recover(self) -> None:
        """After a restart: go on with executions whose worker died; deliver queued ones.

        In the embedded deployment (SQLite, tasks in this process) nothing else can be
        running them, so every `running` execution is taken over at once, and a person's
        rollback still waiting for a worker is asked again (the queue it waited in was in
        memory); elsewhere the scheduler takes over those whose heartbeat has gone stale
        (see `Dispatch.start_due`) and the broker keeps waiting requests.
        Taking over re-runs no finished step and no step that is not idempotent.
        """
        if self.db.is_sqlite and self.backend.local:
            executions.forget_workers(self.db)
            for execution_id in executions.undos_waiting(self.db):  # their queue was memory
                self.dispatch.roll_back(execution_id, "a person's rollback, asked before a restart")
        self.dispatch.start_due()

    def close(self) -> None:
        self.watch.save()
        self.intake.close()
        self.backend.close()
        self.heartbeat.close()
        self.db.dispose()
