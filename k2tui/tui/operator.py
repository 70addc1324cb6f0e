"""The cockpit's operator keys: start or stop the consumer, inject and heal faults, run validations.

Mixed into CockpitApp. Each key starts a worker that calls the `Actions` protocol and reports in the
event log, the fault banner and the validation screen. `run_fault` and `run_validation` are awaitable
from a worker, so the demo tour chains them: inject → watch → heal → recovery → counts, then a procedure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.worker import Worker

from k2tui.tui.actions import Actions
from k2tui.tui.screens.confirm import ConfirmScreen
from k2tui.tui.screens.menu import MenuScreen
from k2tui.tui.screens.validation import ValidationScreen
from k2tui.tui.validation_run import RunState, ValidationRun
from k2tui.tui.widgets.fault_banner import FaultBanner

if TYPE_CHECKING:
    from k2tui.validate.faults import Fault
    from k2tui.validate.live_faults import Injected, Recovery
    from k2tui.validate.procedure import ProcedureReport, ProgressEvent

TOUR_HOLD_S = 5.0
"""How long the tour lets a lasting fault be watched before it heals it."""


@dataclass
class ValidationProgress(Message):
    """A procedure's progress event, posted from whichever thread the procedure runs in."""

    run: ValidationRun
    event: ProgressEvent


@dataclass
class ValidationEnded(Message):
    """Posted after the run's last progress event: finished (with its report), cancelled or crashed."""

    run: ValidationRun
    state: RunState
    error: str = ""
    report: ProcedureReport | None = None


@dataclass(frozen=True)
class ActiveFault:
    fault: Fault
    injected: Injected
    since: datetime
    healing: bool = False


class OperatorKeys:
    """Actions and workers behind the keys s, f, h, v, r (and x on the validation screen)."""

    actions: Actions
    active_fault: ActiveFault | None
    validation: ValidationRun | None
    validation_worker: Worker[Any] | None

    def setup_operator(self, actions: Actions) -> None:
        self.actions = actions
        self.active_fault = None
        self.validation = None
        self.validation_worker = None

    # ---- consumer ------------------------------------------------------------------------------

    def action_toggle_consumer(self) -> None:
        self.run_worker(self._toggle_consumer(), group="consumer", exclusive=True, exit_on_error=False)

    async def _toggle_consumer(self) -> None:
        try:
            self.log_event(await self.actions.toggle_consumer(), "yellow")
        except Exception as error:
            self.log_event(f"consumer: could not start or stop it: {error}", "red")

    # ---- faults --------------------------------------------------------------------------------

    def action_faults(self) -> None:
        if self.active_fault is not None and not self.active_fault.healing:
            self.log_event(f"a fault is already on ({self.active_fault.fault.active}): h heals it", "yellow")
            return
        if any(worker.group == "fault" and not worker.is_finished for worker in self.workers):
            self.log_event("a fault is going in or being recovered from: its outcome comes here", "yellow")
            return
        entries = [(fault.id, fault.title, fault.effect) for fault in self.actions.faults()]
        self.push_screen(MenuScreen("Inject a fault", entries), self._fault_chosen)

    def _fault_chosen(self, fault_id: str | None) -> None:
        fault = self._fault(fault_id)
        if fault is None:
            return
        after = (
            "It is over at once; then the cockpit watches the pipeline recover and counts the trades."
            if fault.instant
            else "It lasts until you press h; then the cockpit watches the pipeline recover and counts "
            "the trades."
        )
        self.push_screen(
            ConfirmScreen(f"Inject: {fault.title}", f"{fault.effect}\n\n{after}", go="Inject"),
            lambda yes: self._start_fault(fault) if yes else None,
        )

    def _start_fault(self, fault: Fault) -> None:
        self.run_worker(self._inject_by_hand(fault), group="fault", exit_on_error=False)

    async def _inject_by_hand(self, fault: Fault) -> None:
        if await self.inject_fault(fault) and fault.instant:
            await self.heal_fault()

    def action_heal(self) -> None:
        if self.active_fault is None:
            self.log_event("no fault is active: f injects one", "yellow")
        elif self.active_fault.healing:
            self.log_event(f"already healing {self.active_fault.fault.active}", "yellow")
        else:
            self.run_worker(self.heal_fault(), group="fault", exit_on_error=False)

    async def run_fault(self, fault_id: str, hold: float = TOUR_HOLD_S) -> Recovery | None:
        """The whole of one fault, for the tour: inject, hold it `hold` seconds (unless it is over at
        once), heal, watch the recovery and count. None when it could not be injected or healed."""
        fault = self._fault(fault_id)
        if fault is None:
            raise KeyError(f"no fault {fault_id!r}")
        if not await self.inject_fault(fault):
            return None
        if not fault.instant:
            await asyncio.sleep(hold)
        return await self.heal_fault()

    async def inject_fault(self, fault: Fault) -> bool:
        since = self.main.clock()
        try:
            injected = await self.actions.inject(fault)
        except Exception as error:
            self.log_event(f"{fault.title}: could not inject: {error}", "red")
            return False
        self.active_fault = ActiveFault(fault, injected, since)
        self.log_event(f"fault injected: {injected.message}", "bold red")
        if fault.instant:
            self._banner().recovering(f"FAULT: {fault.active} at {since:%H:%M:%S} — watching the recovery…")
        else:
            self._banner().active(f"FAULT ACTIVE: {fault.active} since {since:%H:%M:%S} — press h to heal")
        return True

    async def heal_fault(self) -> Recovery | None:
        """Heal the active fault, then watch the pipeline recover and count the fault's window."""
        active = self.active_fault
        if active is None:
            return None
        fault, since = active.fault, f"{active.since:%H:%M:%S}"
        self.active_fault = replace(active, healing=True)
        self._banner().recovering(f"HEALING: {fault.active} since {since}…")
        try:
            self.log_event(f"healed: {await self.actions.heal(fault)}", "yellow")
        except Exception as error:
            self.log_event(f"{fault.title}: could not heal: {error}", "red")
            self.active_fault = active
            self._banner().active(f"FAULT ACTIVE: {fault.active} since {since} — heal failed; h tries again")
            return None
        self._banner().recovering(
            f"RECOVERING from {fault.active} (since {since}): waiting for the consumer to catch up…"
        )
        try:
            recovery = await self.actions.recover(active.injected)
        except Exception as error:
            self.log_event(f"{fault.title}: the recovery could not be checked: {error}", "red")
            return None
        finally:
            self._banner().clear()
            self.active_fault = None
        self.log_event(f"{fault.title}: {recovery.summary()}", "green" if recovery.ok else "bold red")
        return recovery

    def _fault(self, fault_id: str | None) -> Fault | None:
        return next((fault for fault in self.actions.faults() if fault.id == fault_id), None)

    def _banner(self) -> FaultBanner:
        return self.main.query_one(FaultBanner)

    # ---- validations ---------------------------------------------------------------------------

    def action_validations(self) -> None:
        entries = [(name, name, summary) for name, summary in self.actions.procedures()]
        self.push_screen(MenuScreen("Run a validation", entries), self.start_validation)

    def start_validation(self, name: str | None) -> None:
        if name is None:
            return
        if self._validating():
            self.log_event(f"validate {self.validation.name} is still running: x on its screen cancels it")
        else:
            self.validation = ValidationRun(name)
            self.validation_worker = self.run_worker(
                self.run_validation(name), group="validation", exit_on_error=False
            )
        self.push_screen(ValidationScreen(self.validation))

    async def run_validation(self, name: str) -> ProcedureReport | None:
        """Run one procedure with its defaults, following it in `self.validation`; its report, or None
        when it could not run. Awaitable from a worker (the tour)."""
        if (
            self.validation is None
            or self.validation.name != name
            or self.validation.state != RunState.RUNNING
        ):
            self.validation = ValidationRun(name)
        run = self.validation
        self.log_event(f"validate {name}: started")
        try:
            report = await self.actions.run_validation(
                name, lambda event: self.post_message(ValidationProgress(run, event))
            )
        except asyncio.CancelledError:
            self.post_message(ValidationEnded(run, RunState.CANCELLED))
            raise
        except Exception as error:
            self.post_message(ValidationEnded(run, RunState.CRASHED, f"{error.__class__.__name__}: {error}"))
            return None
        run.finish(report)
        self.post_message(ValidationEnded(run, RunState.FINISHED, report=report))
        return report

    def on_validation_ended(self, message: ValidationEnded) -> None:
        """Handled after every progress event of the run (posted before it), so the verdict counts them."""
        run = message.run
        if message.report is not None:
            run.finish(message.report)
        run.state, run.error = message.state, message.error
        self.log_event(
            run.verdict(), {RunState.FINISHED: "green" if run.passed else "bold red"}.get(run.state, "red")
        )
        self._redraw(run)

    def action_cancel_validation(self) -> None:
        if not self._validating():
            self.log_event("no validation is running", "yellow")
            return
        run = self.validation
        run.state = RunState.CANCELLING
        self.log_event(f"validate {run.name}: cancelling; its clean-up steps still run", "yellow")
        self.validation_worker.cancel()
        self._redraw(run)

    def action_last_results(self) -> None:
        if self.validation is None:
            self.log_event("no validation has run yet: v runs one", "yellow")
            return
        self.push_screen(ValidationScreen(self.validation))

    def on_validation_progress(self, message: ValidationProgress) -> None:
        message.run.apply(message.event)
        self._redraw(message.run)

    def _validating(self) -> bool:
        return self.validation_worker is not None and not self.validation_worker.is_finished

    def _redraw(self, run: ValidationRun) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ValidationScreen) and screen.run is run:
                screen.show()
