"""Element refs of the AI snapshot: which are current, which are stale, and the cut.

Playwright numbers refs per document (the counter lives in the page's injected script and
restarts at e1 in every new document), and resolves `aria-ref=eN` against the latest
snapshot taken in the element's frame. So the supervisor remembers, per tab, the refs of
that tab's latest snapshot and every ref it ever showed: a ref outside the latest snapshot
that was shown before is stale; one never shown is not found. A ref of the latest snapshot
whose element is gone (detached, or the tab has moved to another document, where the
lookup finds nothing) is stale too; the caller checks that on the page.
"""

import re

from browser_errors import ActionError

REF_IN_SNAPSHOT = re.compile(r"\[ref=((?:f\d+)?e\d+)\]")


def refs_in(snapshot: str) -> set[str]:
    return set(REF_IN_SNAPSHOT.findall(snapshot))


def cut(snapshot: str, max_chars: int) -> tuple[str, bool]:
    """At most max_chars characters, cut at a line end, with a note saying so."""
    if len(snapshot) <= max_chars:
        return snapshot, False
    end = snapshot.rfind("\n", 0, max_chars)
    if end <= 0:
        end = max_chars
    note = (f"\n[snapshot cut at {end} of {len(snapshot)} characters: scroll and take "
            "another snapshot, or raise max_chars]")
    return snapshot[:end] + note, True


class RefBook:
    """Per tab (any hashable key, e.g. the Page object): the latest refs and all refs shown."""

    def __init__(self):
        self._latest: dict[object, set[str]] = {}
        self._shown: dict[object, set[str]] = {}

    def record(self, tab, refs: set[str]) -> None:
        self._latest[tab] = set(refs)
        self._shown.setdefault(tab, set()).update(refs)

    def forget(self, tab) -> None:
        self._latest.pop(tab, None)
        self._shown.pop(tab, None)

    def check(self, tab, ref: str) -> None:
        """Raise unless ref belongs to the tab's latest snapshot."""
        if ref in self._latest.get(tab, ()):
            return
        if ref in self._shown.get(tab, ()):
            raise ActionError("stale_ref", f"ref {ref} is from an earlier snapshot of this tab; "
                                           "take a new snapshot")
        if any(ref in shown for other, shown in self._shown.items() if other is not tab):
            raise ActionError("stale_ref", f"ref {ref} is from another tab's snapshot; switch "
                                           "to that tab or take a new snapshot")
        if tab not in self._latest:
            raise ActionError("not_found", f"no element with ref {ref}: take a snapshot of this "
                                           "tab first")
        raise ActionError("not_found", f"no element with ref {ref} in the latest snapshot")


def element_gone(ref: str) -> ActionError:
    """The error for a ref of the latest snapshot whose element the page no longer has."""
    return ActionError("stale_ref", f"the element of ref {ref} is gone from the page (it changed "
                                    "or moved on); take a new snapshot")
