"""The running agency: every component built once from the settings and wired together.

Web blueprints, the CLI and tests all use this object; nothing in it knows Flask.
"""

from __future__ import annotations

import gc
import os
import threading
from dataclasses import dataclass, field

from agency.accounts import PasswordCheck
from agency.sign_in import HashingSlots, SignInGuard, SignInLimits
from agency.admin.titles import TitleGuard
from agency.datacite.deposit_checks import DraftGuard
from agency.config import Settings
from agency.db import Database, open_database
from agency.migrations import prepare_schema
from agency.deposit.logs import BatchLogs
from agency.deposit.intake import DepositIntake
from agency.notify.callbacks import CallbackSender, deposit_log_ready
from agency.notify.outbox import MailSender
from agency.notify.notices import FailureNotices, RefusalNotices
from agency.query.matcher import QueryMatcher
from agency.query.jobs import QueryIntake, QueryRunner
from agency.templating import make_environment
from agency.deposit.validation import DepositValidator, MarkupLimits, SchemaCatalog
from agency.deposit.runner import AllChecks, DepositRunner
from agency.runtime.worker import Worker


@dataclass
class Agency:
    settings: Settings
    db: Database
    passwords: PasswordCheck
    logs: BatchLogs
    intake: DepositIntake
    worker: Worker
    templates: object
    mail: MailSender
    queries: QueryIntake | None = None
    sign_in: SignInGuard = field(default_factory=SignInGuard)
    callbacks: CallbackSender | None = None
    url_updates: object | None = None  # agency.admin.url_updates.UrlUpdateIntake
    aliases: object | None = None  # agency.admin.aliases.AliasFiles
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _mddb: object | None = None
    _mds: object | None = None
    _scheduler: object | None = None
    _handle_server: object | None = None
    _handle_key_guard: SignInGuard | None = None

    @property
    def mddb(self):
        """The metadata database loader (agency.metadata.load.MddbLoader), built on first use."""
        if self._mddb is None:
            from agency.metadata.load import MddbLoader

            self._mddb = MddbLoader(self.settings, self.db, self.templates)
        return self._mddb

    @property
    def mds(self):
        """DataCite's MDS operations (agency.datacite.states.MdsDois), built on first use."""
        if self._mds is None:
            from agency.datacite.kernel4 import Kernel4Schema
            from agency.datacite.states import MdsDois

            self._mds = MdsDois(Kernel4Schema(self.settings.schema_dir), self.settings.handle_ttl,
                                self.settings.batch_dir)
        return self._mds

    def start_background(self) -> None:
        """Start the in-process worker thread (and, where configured, the scheduler, which runs its jobs
        only while this process holds the scheduler lease)."""
        if self.settings.run_worker and not self._threads:
            self._threads.append(self.worker.start_thread(self._stop))
        self.start_scheduler()

    def start_scheduler(self) -> None:
        """Start the scheduler when configured (``agency worker`` runs its worker in the main thread)."""
        if self.settings.run_scheduler and self._scheduler is None:
            from agency.runtime.scheduling import build_scheduler

            self._scheduler = build_scheduler(self)
            self._scheduler.start()

    @property
    def handle_key_guard(self) -> SignInGuard:
        """Wrong key answers, per key and per client address: the REST API's, and the protocol server's when it
        runs in this process (one count for both)."""
        if self._handle_key_guard is None:
            from agency.handles.protocol.assembly import key_guard

            self._handle_key_guard = key_guard(self.settings)
        return self._handle_key_guard

    def start_handle_server(self, port: int | None = None):
        """Start the Handle protocol server (TCP and UDP) in this process; returns it (``.port``)."""
        from agency.handles.protocol.assembly import build_handle_server

        if self._handle_server is None:
            self._handle_server = build_handle_server(self.settings, self.db, audit=handle_audit, port=port,
                                                      guard=self.handle_key_guard).start()
        return self._handle_server

    def fold_counts(self) -> int:
        """Fold every prefix's handle count rows into one, and the metadata record count's (PostgreSQL's
        triggers add a row per statement); the number of counts folded."""
        from agency.handles.counts import fold_counts
        from agency.metadata.record_count import fold_record_counts

        with self.db.transaction() as session:
            return fold_counts(session) + int(fold_record_counts(session))

    def finished_results(self, submission_id: int) -> list | None:
        """The results of a deposit the in-process worker just completed (once), else None:
        saves reading them back to answer a request that waited for them."""
        return self.worker.runners["deposit"].finished_results(submission_id)

    def background_state(self) -> dict[str, str]:
        """The in-process worker and scheduler: running, off (not asked for here) or stopped (asked for, but gone)."""
        worker = "off" if not self.settings.run_worker else (
            "running" if any(thread.is_alive() for thread in self._threads) else "stopped")
        scheduler = "off" if not self.settings.run_scheduler else "stopped"
        if self.settings.run_scheduler and self._scheduler is not None and self._scheduler.running:
            scheduler = "elected" if self._scheduler.election.elected else "standby"
        return {"worker": worker, "scheduler": scheduler}

    def stop_background(self) -> None:
        if self._handle_server is not None:
            self._handle_server.stop()
            self._handle_server = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler.election.resign()  # another process takes over now, not when the lease expires
            self._scheduler = None
        self._stop.set()
        self.worker.wakeup.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()


def handle_audit(session, actor: str, action: str, subject: str, **details) -> None:
    """The audit hook handed to the handle store's writers (``handles`` does not import ``admin``)."""
    from agency.admin.audit import Actor, record_event

    kind, _, name = actor.partition(":")
    record_event(session, Actor(kind, name), action, subject, **details)


# A full collection walks every tracked object the process holds, a batch's records too (a 100,000-record
# deposit holds 100,000 records and their citations at intake, then as many results in the worker). CPython
# starts one after 10 middle collections whenever the old generation has grown by a quarter: 7 of them
# during such a deposit (0.48-0.54 s of its 8.4 s). At most one in this many middle collections (700 x 10 x
# 100 = 700,000 net allocations of containers): cyclic garbage that has outlived two younger collections
# waits that long to be freed, and no longer.
FULL_COLLECTION_AFTER = 100


def settle_startup_heap() -> None:
    """Leave everything built at start-up out of garbage collection from now on, and make full
    collections rarer.

    Modules, mappers, schemas and templates live as long as the process. A large
    batch allocates enough to set off many collections, and each older-generation
    one would walk all of them again (measured on a 10,000-record deposit: 40 ms
    of collection, 10 ms once start-up objects are frozen). Call it once, when the
    process is ready to serve.
    """
    gc.collect()
    gc.freeze()
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def _hand_over(worker: Worker, submission_id: int, records) -> None:
    """Give an accepted deposit's extracted records to the in-process worker and wake it."""
    worker.runners["deposit"].prime(submission_id, records)
    worker.wakeup.set()


def build_agency(settings: Settings) -> Agency:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.batch_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.effective_database_url, settings.sqlite_cache_mib)
    prepare_schema(db, auto_upgrade=settings.db_auto_upgrade or db.dialect == "sqlite")
    templates = make_environment(settings.template_dir)
    catalog = SchemaCatalog(settings.schema_dir)
    logs = BatchLogs(templates)
    worker = Worker(settings, db, runners={}, on_failed=FailureNotices(settings, templates).on_failed)
    mail = MailSender(settings, db)
    limits = MarkupLimits(max_attributes_per_element=settings.max_attributes_per_element,
                          max_children_per_element=settings.max_children_per_element,
                          max_body_item_bytes=settings.max_body_item_bytes)
    log_ready = deposit_log_ready(settings)
    intake = DepositIntake(settings, db, DepositValidator(catalog, limits), logs,
                           on_refused=_both(RefusalNotices(settings, templates).on_refused, log_ready),
                           on_accepted=lambda sid, records: _hand_over(worker, sid, records))
    worker.runners["deposit"] = DepositRunner(settings, db, logs, on_completed=log_ready,
                                              checks=AllChecks(TitleGuard(), DraftGuard()))
    matcher = QueryMatcher(db)
    queries = QueryIntake(settings, db, intake, matcher, on_accepted=lambda _id: worker.wakeup.set())
    worker.runners["query"] = QueryRunner(settings, db, matcher, templates)
    url_updates = _url_updates(settings, db, intake, logs, templates, worker)
    return Agency(settings=settings, db=db, passwords=PasswordCheck(settings.password_time_cost,
                                                                    slots=hashing_slots(settings)),
                  logs=logs, intake=intake, worker=worker, templates=templates,
                  mail=mail, queries=queries, callbacks=CallbackSender(settings, db), url_updates=url_updates,
                  aliases=_alias_files(settings, db, intake, logs), sign_in=sign_in_guard(settings))


def sign_in_guard(settings: Settings) -> SignInGuard:
    return SignInGuard(SignInLimits(failures_per_login=settings.sign_in_failures_per_login,
                                    failures_per_address=settings.sign_in_failures_per_address,
                                    window_seconds=settings.sign_in_window_seconds))


def hashing_slots(settings: Settings) -> HashingSlots:
    slots = settings.password_hash_slots or max(1, (os.cpu_count() or 2) // 2)
    return HashingSlots(slots, settings.password_hash_waiting, settings.password_hash_wait_seconds,
                        settings.password_hash_niceness)


def _both(first, second):
    """Two hooks called in turn with the same arguments (in the same transaction)."""
    def call(*args) -> None:
        first(*args)
        second(*args)
    return call


def _url_updates(settings: Settings, db: Database, intake: DepositIntake, logs: BatchLogs, templates,
                 worker: Worker):
    """Bulk URL updates: their intake, and their runner in the worker."""
    from agency.admin.url_updates import URL_UPDATE_KIND, UrlUpdateIntake, UrlUpdateRunner

    worker.runners[URL_UPDATE_KIND] = UrlUpdateRunner(settings, db, logs, templates)
    return UrlUpdateIntake(settings, db, intake, on_accepted=lambda _id: worker.wakeup.set())


def _alias_files(settings: Settings, db: Database, intake: DepositIntake, logs: BatchLogs):
    from agency.admin.aliases import AliasFiles

    return AliasFiles(settings, db, intake, logs)
