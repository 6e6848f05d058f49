"""An event loop's way into an `AuditTrail`: group commit without a thread per call.

Calls end on the event loop; storing a record blocks (fsync, a database commit). One thread
per record would queue calls behind asyncio's small default executor and pay a hand-over each,
so records wait here instead: the first record of an idle moment is stored at once, in one
worker thread, and the records of calls that end meanwhile wait and go together in the next
group (one write, one fsync or commit, one hand-over for all of them). A call is answered only
once its group is stored; a group that cannot be stored fails every call in it.
"""

from __future__ import annotations

import asyncio

from clinpred.services.common.audit.chain import AuditTrail
from clinpred.services.common.audit.errors import AuditUnavailable
from clinpred.services.common.audit.records import AuditEntry, AuditRecord

# Records stored together at most: bounds one transaction and one write under a flood.
MAX_GROUP = 256


class QueuedAuditTrail:
    """Appends from one event loop to `trail`, in groups; owned by the process that serves."""

    def __init__(self, trail: AuditTrail, max_group: int = MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("a group holds at least one record")
        self.trail = trail
        self.max_group = max_group
        self._waiting: list[tuple[AuditEntry, asyncio.Future[AuditRecord]]] = []
        self._storing: asyncio.Task[None] | None = None
        # Totals since start (for tests and diagnostics).
        self.records_stored = 0
        self.groups_stored = 0

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """The stored record of `entry`, once its group is durably stored (raises `AuditUnavailable` else).

        Cancelling the caller does not withdraw the entry: a call that ended is recorded."""
        future: asyncio.Future[AuditRecord] = asyncio.get_running_loop().create_future()
        # A caller that left still has its record stored; its failure, if any, is nobody's to raise.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting.append((entry, future))
        if self._storing is None:
            self._storing = asyncio.create_task(self._store_groups())
        return await asyncio.shield(future)

    async def _store_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group :]
                try:
                    records = await asyncio.to_thread(self.trail.append_group, [entry for entry, _ in group])
                except Exception as error:
                    # The trail's own message, or (a trail that broke its contract) the class name only.
                    reason = error.message if isinstance(error, AuditUnavailable) else type(error).__name__
                    for _, future in group:
                        if not future.done():
                            future.set_exception(AuditUnavailable(f"audit record could not be stored: {reason}"))
                    continue
                self.records_stored += len(records)
                self.groups_stored += 1
                for (_, future), record in zip(group, records, strict=True):
                    if not future.done():
                        future.set_result(record)
        finally:
            self._storing = None
