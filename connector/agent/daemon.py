"""``cessio run``: the agent in the foreground (for systemd or a container).

Lifecycle: take the single-agent lock → mark runs a crashed agent left open as ``interrupted`` → plan the
jobs from the configuration → start the scheduler (every job runs once at start-up) → wait for signals.

- SIGTERM/SIGINT: no new run starts; running jobs finish their current work (each store transaction is
  short and atomic) for at most ``agent.stop_timeout_seconds``, then the agent exits 0. If a job is still
  running at the bound, the agent exits 1 at once: SQLite rolls the open transaction back and the next
  start marks that run ``interrupted`` (every job is idempotent, so it is simply done again).
- SIGHUP: reload the configuration file. A new configuration that does not validate (or would move the
  store) is refused with one log line and the agent carries on with the old one.
- A failing job is logged with its exception class and simply runs again at its next time; after
  ``agent.alert_after_failures`` failures in a row each further failure logs an ``ALERT`` line (and the
  health endpoint answers 503). A failing *store* (I/O error, disk full, corruption) is the exception: the
  agent stops and exits 1 so that its supervisor restarts it and a human looks.

Signal handlers only set flags; all work happens in the main loop or in worker threads, each of which
opens its own store connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from connector.agent.jobs import JobSpec, plan_jobs, timezone_of
from connector.agent.lock import AgentLock
from connector.agent.scheduler import install_jobs, make_scheduler, schedule_rows
from connector.errors import CessioError, ConfigError, InvariantViolation, NotBuiltYet, StoreError
from connector.logs import redact, run_id_var

log = logging.getLogger("cessio.agent")

BOOKKEEPING_SECONDS = 2.0


class Agent:
    def __init__(self, config: Any, *, store_path: Path | None = None, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else (Path(config.path) if config.path else None)
        self.store_path = Path(store_path) if store_path else Path(config.store_path)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._dirty = threading.Event()  # the schedule changed: publish it
        self._running: dict[str, float] = {}
        self._state_lock = threading.Condition()
        self._last: dict[str, dict[str, Any]] = {}
        self.session_id: int | None = None
        self.fatal: BaseException | None = None  # a store I/O error or corruption: stop, let the supervisor restart
        self.scheduler = None
        self.started_at = time.time()

    # -- signals -------------------------------------------------------------------------------------
    def _on_stop(self, signum: int, _frame: Any) -> None:
        if self._stop.is_set() and signum == signal.SIGINT:  # a second Ctrl-C: the operator will not wait
            os.write(2, b"cessio: second interrupt, exiting now (open transactions roll back)\n")
            os._exit(130)
        log.info("received %s: finishing running jobs, then exiting", signal.Signals(signum).name)
        self._stop.set()

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self._reload.set()

    # -- one job execution (in a worker thread) ----------------------------------------------------
    def execute(self, spec: JobSpec) -> None:
        from connector.store import Store

        if self._stop.is_set():
            return
        run_id = uuid.uuid4().hex[:16]
        token = run_id_var.set(run_id)
        config = self.config  # a reload swaps the reference; this run keeps the one it started with
        alert_after = config.section("agent")["alert_after_failures"]
        extra = {"job": spec.id}
        with self._state_lock:
            self._running[spec.id] = time.monotonic()
        started = time.monotonic()
        store = None
        try:
            store = Store(self.store_path, actor=f"agent:{spec.id}")
            store.job_started(spec.id, run_id)
            outcome, error, summary = "ok", None, None
            log.info("job %s started", spec.id, extra=extra)
            try:
                summary = spec.func(store, config)
                if summary and summary.get("skipped"):
                    outcome = "skipped"
                    log.info("job %s skipped: %s", spec.id, summary["skipped"], extra=extra)
            except NotBuiltYet as exc:
                outcome, error = "not_built", str(exc)
            except Exception as exc:  # every failure is recorded; the job runs again at its next time
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"
                log.error("job %s failed (%s): %s", spec.id, type(exc).__name__, exc, extra=extra,
                          exc_info=not isinstance(exc, CessioError))
                self._check_fatal(exc)
            duration_ms = int((time.monotonic() - started) * 1000)
            store.job_finished(run_id, outcome, error=redact(error) if error else None, summary=summary,
                               duration_ms=duration_ms)
            streak = store.failures_in_a_row(spec.id) if outcome == "failed" else 0
            if outcome == "ok":
                log.info("job %s ok in %d ms", spec.id, duration_ms, extra=extra)
            elif outcome == "not_built":
                log.warning("job %s: %s", spec.id, error, extra=extra)
            if streak >= alert_after:
                log.critical("ALERT: job %s failed %d times in a row; last error: %s", spec.id, streak, error,
                             extra=extra)
            with self._state_lock:
                self._last[spec.id] = {"outcome": outcome, "error": error, "duration_ms": duration_ms,
                                       "failures_in_a_row": streak, "run_id": run_id,
                                       "alert": streak >= alert_after}
        except CessioError as exc:  # the store itself failed: nothing can be recorded there
            log.error("job %s could not run (%s): %s", spec.id, type(exc).__name__, exc, extra=extra)
            self._check_fatal(exc)
            with self._state_lock:
                previous = self._last.get(spec.id, {}).get("failures_in_a_row", 0)
                self._last[spec.id] = {"outcome": "failed", "error": str(exc), "failures_in_a_row": previous + 1,
                                       "run_id": run_id, "alert": previous + 1 >= alert_after}
        finally:
            if store is not None:
                store.close()
            with self._state_lock:
                self._running.pop(spec.id, None)
                self._state_lock.notify_all()
            self._dirty.set()
            run_id_var.reset(token)

    def _check_fatal(self, exc: BaseException) -> None:
        """A store that fails with an I/O error, a full disk or corruption must not be written to again:
        stop the agent (exit 1) so the supervisor restarts it and a human sees it. A business invariant
        refused (double assignment...) is a failure of that work only."""
        if isinstance(exc, StoreError) and not isinstance(exc, InvariantViolation):
            log.critical("ALERT: the store failed (%s: %s); the agent stops", type(exc).__name__, exc)
            self.fatal = exc
            self._stop.set()

    # -- health ----------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        with self._state_lock:
            jobs = {job_id: dict(last) for job_id, last in self._last.items()}
            running = sorted(self._running)
        alerting = sorted(j for j, last in jobs.items() if last.get("alert"))
        return {"status": "alert" if alerting else "ok", "pid": os.getpid(), "alerting": alerting,
                "running": running, "uptime_seconds": int(time.time() - self.started_at),
                "stopping": self._stop.is_set(), "jobs": jobs}

    # -- bookkeeping thread: heartbeat and the published schedule --------------------------------------
    def _bookkeeper(self) -> None:
        from connector.store import Store

        store = None
        try:
            store = Store(self.store_path, actor="agent")
            while not self._stop.is_set():
                try:
                    if self._dirty.is_set() and self.scheduler is not None:
                        self._dirty.clear()
                        store.publish_schedule(schedule_rows(self.scheduler))
                    if self.session_id is not None:
                        store.agent_heartbeat(self.session_id)
                except CessioError as exc:
                    log.warning("could not record the agent's heartbeat: %s", exc)
                self._stop.wait(BOOKKEEPING_SECONDS)
        except CessioError as exc:
            log.error("bookkeeping stopped: %s", exc)
        finally:
            if store is not None:
                store.close()

    # -- reload -------------------------------------------------------------------------------------
    def reload(self, store: Any) -> bool:
        from connector.config import load_config

        if self.config_path is None:
            log.warning("SIGHUP: no configuration file to reload (started with --db only); nothing changed")
            return False
        try:
            new = load_config(self.config_path)
            if Path(new.store_path) != Path(self.config.store_path):
                raise ConfigError("the store cannot move while the agent runs; restart the agent instead",
                                  key="store.path", file=str(self.config_path))
            if timezone_of(new) != timezone_of(self.config):
                raise ConfigError("the time zone cannot change while the agent runs; restart the agent instead",
                                  key="agent.timezone", file=str(self.config_path))
            specs = plan_jobs(new)
        except CessioError as exc:
            log.error("configuration reload refused, the agent keeps running on the previous one: %s", exc)
            with contextlib.suppress(CessioError):
                store.agent_config_event(self.session_id, "agent.config_refused", {"error": redact(str(exc))})
            return False
        self.config = new
        changes = install_jobs(self.scheduler, specs, self.execute, first_run=True)
        self._dirty.set()
        log.info("configuration reloaded from %s: %s", self.config_path,
                 ", ".join(f"{k} {len(v)}" for k, v in changes.items()))
        with contextlib.suppress(CessioError):
            store.agent_config_event(self.session_id, "agent.config_reloaded", changes)
        return True

    # -- main ---------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        from connector.store import Store

        specs = plan_jobs(self.config)  # a bad configuration stops here, before the lock is even taken
        # handlers first: a SIGHUP during start-up must not kill the agent (its default action would)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            lock = AgentLock(self.store_path).acquire()
            try:
                with Store(self.store_path, actor="agent") as store:
                    interrupted = store.interrupt_orphan_runs()
                    if interrupted:
                        log.warning("%d job run(s) were interrupted by the previous agent's end; they run again now",
                                    interrupted)
                    self.session_id = store.agent_session_started(
                        pid=os.getpid(), host=socket.gethostname(),
                        config_path=str(self.config_path) if self.config_path else None)
                    return self._serve(store, specs)
            finally:
                lock.release()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _serve(self, store: Any, specs: list[JobSpec]) -> int:
        agent_cfg = self.config.section("agent")
        self.scheduler = make_scheduler(timezone_of(self.config), workers=agent_cfg["workers"])
        # the agent logs every run itself (with its run id); APScheduler's per-run lines would only double them
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        health_server = None
        try:
            if agent_cfg["health_port"]:
                from connector.agent.health import start_health_server

                health_server = start_health_server(agent_cfg["health_port"], self.health)
            install_jobs(self.scheduler, specs, self.execute, first_run=True)
            self.scheduler.start()
            bookkeeper = threading.Thread(target=self._bookkeeper, name="cessio-bookkeeper", daemon=True)
            bookkeeper.start()
            self._dirty.set()
            log.info("agent started (pid %d, store %s): %s", os.getpid(), self.store_path,
                     ", ".join(spec.id for spec in specs))
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload(store)
                self._stop.wait(0.2)
            return self._shutdown(store, bookkeeper, agent_cfg["stop_timeout_seconds"])
        finally:
            if health_server is not None:
                health_server.shutdown()
                health_server.server_close()

    def _shutdown(self, store: Any, bookkeeper: threading.Thread, timeout: int) -> int:
        self.scheduler.shutdown(wait=False)  # no new runs; running ones go on
        deadline = time.monotonic() + timeout
        with self._state_lock:
            while self._running and time.monotonic() < deadline:
                self._state_lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            still = sorted(self._running)
        bookkeeper.join(timeout=5)
        if still:
            log.error("jobs still running after %ss: %s; exiting now (their open transactions roll back and "
                      "they run again at the next start)", timeout, ", ".join(still))
            logging.shutdown()
            os._exit(1)
        if self.fatal is not None:
            with contextlib.suppress(CessioError):
                store.agent_session_stopped(self.session_id, f"store failed: {type(self.fatal).__name__}")
            return 1
        store.agent_session_stopped(self.session_id, "stopped")
        log.info("agent stopped cleanly")
        return 0


def run_agent(config: Any, *, store_path: Path | None = None, config_path: Path | None = None) -> int:
    return Agent(config, store_path=store_path, config_path=config_path).run()
