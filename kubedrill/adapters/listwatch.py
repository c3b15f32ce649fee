"""List-then-watch one kind, for as long as asked: the loop both the engine's cluster
watcher and the sandbox's pod runner use.

It lists, hands the items to ``on_sync``, then watches from the list's resourceVersion,
resuming from the last version seen (BOOKMARKs advance it too) each time the server ends
the stream. A broken stream is reported to ``on_lost`` and the watch resumes from that
version (the server replays what happened meanwhile, so nothing is lost; ``on_resumed``
says when it is open again); only a 410 Gone (the version is compacted away) or an error
before any version is known forces a fresh list. Failures back off exponentially (0.2 s
doubling to 5 s), reset once a watch opens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubedrill.adapters.kube import ApiAdapter, ApiFailed, WatchGone

__all__ = ["ListWatch"]

_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.2, 5.0


def _noop(*_: Any) -> None:
    return None


@dataclass
class ListWatch:
    """Run with :meth:`run` (blocks until ``stop`` is set) or :meth:`start` (a thread)."""

    adapter: ApiAdapter
    kind: str
    namespace: str | None
    on_sync: Callable[[list[dict[str, Any]]], None]
    on_event: Callable[[str, Mapping[str, Any]], None]
    on_lost: Callable[[str], None] = _noop
    on_resumed: Callable[[], None] = _noop
    #: the first LIST failed with this error: return True to give up (the default)
    on_first_error: Callable[[ApiFailed], bool] = lambda _e: True
    on_error: Callable[[str], None] = _noop
    stop: threading.Event = field(default_factory=threading.Event)
    timeout_s: int = 30
    label_selector: str | None = None
    field_selector: str | None = None
    resource_version: str = ""
    lists: int = 0

    def start(self, name: str | None = None) -> threading.Thread:
        t = threading.Thread(target=self.run, name=name or f"listwatch-{self.kind}", daemon=True)
        t.start()
        return t

    def _selectors(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.label_selector:
            kw["label_selector"] = self.label_selector
        if self.field_selector:
            kw["field_selector"] = self.field_selector
        return kw

    def run(self) -> None:
        backoff = _BACKOFF_MIN_S
        lost = False  # on_lost told, neither a list nor a reopened watch since

        def tell_lost(detail: str) -> None:
            nonlocal lost
            if self.lists and not lost:
                self.on_lost(detail)
            lost = True

        while not self.stop.is_set():
            try:
                if not self.resource_version:
                    try:
                        items, rv = self.adapter.list(
                            self.kind, self.namespace, **self._selectors()
                        )
                    except ApiFailed as e:
                        if self.lists == 0 and self.on_first_error(e):
                            return
                        raise
                    self.lists += 1
                    self.on_sync(items)
                    self.resource_version, lost, backoff = rv, False, _BACKOFF_MIN_S
                opened = False
                for event, obj in self.adapter.watch(
                    self.kind, self.namespace, self.resource_version, self.timeout_s,
                    **self._selectors(),
                ):  # fmt: skip
                    if not opened:  # the adapter says OPENED first; a fake may not
                        opened, backoff = True, _BACKOFF_MIN_S
                        if lost:
                            lost = False
                            self.on_resumed()
                    if event == "OPENED":
                        continue
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                    if event != "BOOKMARK":
                        self.on_event(event, obj)
                    if rv:
                        self.resource_version = rv
                    if self.stop.is_set():
                        return
                if lost:  # a resumed stream that ended cleanly without a word
                    lost = False
                    self.on_resumed()
            except WatchGone:
                tell_lost("410 Gone: relisting")
                self.resource_version = ""
            except Exception as e:  # noqa: BLE001 - a watch must not die silently
                detail = f"{type(e).__name__}: {e}"[:300]
                tell_lost(detail)
                self.on_error(detail)
                if self.stop.wait(backoff):
                    return
                backoff = min(_BACKOFF_MAX_S, backoff * 2)
