"""INFO's text, as data: sections of ``name:value`` fields, parsed and written as Redis does.

jshost builds its `INFO` reply from the store's (the data's facts: keyspace, persistence,
the store's memory) and its own (the server the client talks to: port, process, clients,
commands), so it reads the store's text into `Sections`, replaces or adds fields, and writes it
back. Plain values in, text out: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: A section: its title as INFO writes it ("Server"), and its fields in order.
Fields = dict[str, str]


class Sections:
    """INFO's sections in order, each an ordered dict of fields (names as INFO writes them)."""

    def __init__(self) -> None:
        self._sections: dict[str, Fields] = {}  # by lower-case name
        self._titles: dict[str, str] = {}

    @classmethod
    def parse(cls, text: bytes | str) -> Sections:
        """Read an INFO reply (``# Title`` lines, ``name:value`` lines, blank lines)."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        sections = cls()
        current: Fields | None = None
        for line in text.splitlines():
            line = line.strip("\r")
            if line.startswith("# "):
                current = sections.section(line[2:].strip())
            elif line and current is not None:
                name, _, value = line.partition(":")
                current[name] = value
        return sections

    def section(self, title: str) -> Fields:
        """The section named `title` (created, at the end, if it is missing)."""
        key = title.lower()
        if key not in self._sections:
            self._sections[key] = {}
            self._titles[key] = title
        return self._sections[key]

    def has(self, title: str) -> bool:
        return title.lower() in self._sections

    def titles(self) -> list[str]:
        return [self._titles[key] for key in self._sections]

    def update(self, title: str, fields: Iterable[tuple[str, object]]) -> None:
        """Set fields of a section (existing ones keep their place, new ones go last)."""
        section = self.section(title)
        for name, value in fields:
            section[name] = text_of(value)

    def replace(self, title: str, fields: Iterable[tuple[str, object]]) -> None:
        """The section's fields are exactly `fields` (it keeps its place)."""
        section = self.section(title)
        section.clear()
        self.update(title, fields)

    def insert_after(self, title: str, after: Iterable[str]) -> None:
        """Move section `title` right after the last present one of `after` (else first)."""
        key = title.lower()
        if key not in self._sections:
            return
        order = [k for k in self._sections if k != key]
        anchors = [i for i, k in enumerate(order) if k in {a.lower() for a in after}]
        order.insert(anchors[-1] + 1 if anchors else 0, key)
        self._sections = {k: self._sections[k] for k in order}

    def render(self, only: Iterable[str] | None = None) -> str:
        """Redis' text: ``# Title``, its fields, a blank line between sections, CRLF."""
        wanted = None if only is None else {t.lower() for t in only}
        parts = []
        for key, fields in self._sections.items():
            if wanted is not None and key not in wanted:
                continue
            lines = [f"# {self._titles[key]}", *(f"{n}:{v}" for n, v in fields.items())]
            parts.append("\r\n".join(lines))
        return "\r\n\r\n".join(parts) + "\r\n" if parts else ""

    def get(self, title: str) -> Mapping[str, str]:
        return self._sections.get(title.lower(), {})


def text_of(value: object) -> str:
    """A field value as INFO writes it (floats with 2 decimals, as Redis' "%.2f" fields)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
