"""Triggers in front of a real Redis that other jshost instances may share: the trigger lease.

Only the holder of the lease runs triggers and stream consumers (see `RemoteTriggers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

from jshost.host.streams import LEASE_KEY
from jshost.store.base import KeyspaceNotifications

if TYPE_CHECKING:
    from jshost.host.triggers import Triggers

log = logging.getLogger("jshost.triggers")

#: Take or renew the lease, atomically (Lua): 1 if this instance (ARGV[1]) holds it now (renewed
#: for ARGV[2] ms), 2 if it was taken over from a stale holder, 0 if another jshost holds it. A
#: holder is live only if the key is a string of 32 hex digits (a jshost instance id) with a
#: time to live: a value without one, or of another form or type, was not written by a jshost
#: and would otherwise stop triggers on every instance for good.
_ACQUIRE = (b"local key, me, ms = KEYS[1], ARGV[1], ARGV[2] "
            b"local kind = redis.call('type', key)['ok'] "
            b"if kind == 'none' then redis.call('set', key, me, 'PX', ms) return 1 end "
            b"if kind == 'string' then "
            b"local holder = redis.call('get', key) "
            b"if holder == me then redis.call('pexpire', key, ms) return 1 end "
            b"if redis.call('pttl', key) > 0 and string.len(holder) == 32 "
            b"and not string.find(holder, '[^0-9a-f]') then return 0 end "
            b"end "
            b"redis.call('set', key, me, 'PX', ms) return 2")
#: Give the lease up if it is still ours.
_RELEASE = (b"if redis.call('get', KEYS[1]) == ARGV[1] then "
            b"return redis.call('del', KEYS[1]) else return 0 end")
class RemoteTriggers:
    """Triggers in front of a real Redis that other jshost instances may share.

    Several jshost instances may serve one Redis; only one runs triggers and stream consumers:
    the holder of the *lease*, the key `jshost:triggers:lease` (value: the instance's id), taken
    with `SET NX PX <lease_ms>` and renewed every `lease_ms / 3` (compare-and-expire, in Lua).
    The holder turns keyspace notifications on and subscribes to them
    (`KeyspaceNotifications.start_keyspace_events`); the others keep trying to take the lease,
    and one of
    them takes over within `lease_ms` of the holder stopping (at once when it stops gracefully:
    it deletes the lease). A new holder scans for streams and resumes each stream trigger from
    the positions kept in Redis.

    On the holder, a client command through jshost waits for its keyspace events (and so for
    sync keyspace triggers) before its reply, when one of its keys matches a keyspace trigger.
    Writes that reach Redis otherwise — clients bypassing jshost, and the clients of the other
    instances — fire triggers asynchronously, as their notifications arrive.
    """

    lease_ms = 10_000

    def __init__(self, triggers: Triggers, store: KeyspaceNotifications) -> None:
        self.triggers = triggers
        self.store = store
        self.instance = uuid.uuid4().hex.encode()
        self.leader = False
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None  # the first try for the lease
        self._leading: asyncio.Event | None = None
        self._closed = False
        triggers.active = False  # until this instance holds the lease

    @property
    def leading(self) -> asyncio.Event:
        """Set while this instance holds the lease."""
        if self._leading is None:
            self._leading = asyncio.Event()
            if self.leader:
                self._leading.set()
        return self._leading

    async def start(self) -> None:
        """Try for the lease now (raising `BackendError` if Redis refuses notifications), then
        keep renewing it, or trying again, in the background. A start already under way (the
        first trigger's load begins one) is awaited, not skipped: on return, this instance
        leads or knows it does not."""
        if self._closed:
            return
        if self._starting is None or (self._starting.done() and self._task is None):
            self._starting = asyncio.get_running_loop().create_task(self._first_tick())
        await asyncio.shield(self._starting)

    async def _first_tick(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await self._tick()
        except BaseException:
            self._task.cancel()  # a refusal stops here (a later load tries again)
            self._task = None
            raise

    def triggers_changed(self) -> None:
        """A library came or went: start on the first trigger (the server may not have)."""
        if self._task is None and not self._closed and self.triggers.has_triggers():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # started by `Host.start_triggers()` (or the next load under a loop)
            loop.create_task(self._start_logged())

    async def _start_logged(self) -> None:
        try:
            await self.start()
        except Exception as exc:  # noqa: BLE001 - logged; the server keeps serving
            log.error("triggers could not start: %s", exc)

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - tried again on the next round
                log.error("trigger lease: %s", exc)

    async def _tick(self) -> None:
        store = self.store
        _ = self.triggers.gates.replica  # a role changed behind jshost's back is acted on too
        ms = str(self.lease_ms).encode()
        try:
            (held,) = store.round_trip([[b"EVAL", _ACQUIRE, b"1", LEASE_KEY, self.instance, ms]])
        except Exception as exc:  # a leader counts it as lost
            if not self.leader:
                raise
            log.warning("could not renew the trigger lease: %s", exc)
            held = 0
        if held == 2:
            log.warning("the trigger lease %s held a value no jshost wrote (no time to live, or "
                        "not an instance id): this jshost (%s) took it over",
                        LEASE_KEY.decode(), self.instance.decode())
        if held not in (1, 2):
            if self.leader:
                self._lose("the trigger lease was lost")
            return
        if not self.leader or not store.keyspace_events_running:  # (the event connection dropped)
            await self._lead()
        else:
            self._assert_notifications()

    def _assert_notifications(self) -> None:
        """While leading, put back notify-keyspace-events if someone took out what triggers need
        (logged by `ensure_notifications`)."""
        try:
            self.store.ensure_notifications()
        except Exception as exc:  # noqa: BLE001 - tried again on the next round
            log.error("triggers need keyspace notifications: %s", exc)

    async def _lead(self) -> None:
        try:
            await self.store.start_keyspace_events(self.instance)
        except Exception:
            self._release()
            self.leader = False
            raise
        if self._closed:
            return
        first = not self.leader
        self.leader = True
        self.triggers.active = True
        self.leading.set()
        if first:
            log.info("this jshost (%s) runs the triggers", self.instance.decode())
        self.triggers.streams.resume_all()

    def _lose(self, reason: str) -> None:
        log.warning("%s: this jshost stops running triggers", reason)
        self.leader = False
        self.triggers.active = False
        if self._leading is not None:
            self._leading.clear()
        self.store.stop_keyspace_events()
        for lib in self.triggers.registry.libraries.values():
            for trigger in lib.stream_triggers.values():
                trigger.streams.clear()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self.store.round_trip([[b"EVAL", _RELEASE, b"1", LEASE_KEY, self.instance]])

    def close(self) -> None:
        """Stop: give the lease up (another instance takes over at once)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self.leader:
            self.leader = False
            self.triggers.active = False
            self._release()
        self.store.stop_keyspace_events()
