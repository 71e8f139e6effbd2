"""Log text from JS made safe: a library cannot end its log line and forge another."""

from __future__ import annotations

import re

# What could end a log line, or start a forged one, or confuse a terminal: C0 controls but tab,
# C1 controls, DEL, the Unicode line and paragraph separators, and lone surrogates (not UTF-8
# at all).
_UNSAFE_IN_LOG = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LOG_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def escape_controls(text: str) -> str:
    """rg `redis.log`: the message as written, but each character that could end the log line
    (or forge another) escaped as `escape_default` writes it (`\\n`, `\\u{1b}`)."""
    if _UNSAFE_IN_LOG.search(text) is None:
        return text
    return _UNSAFE_IN_LOG.sub(
        lambda m: _LOG_ESCAPES.get(m.group(), f"\\u{{{ord(m.group()):x}}}"), text)


def escape_default(text: str) -> str:
    """Rust's `str::escape_default` (tf `redis.log`, as RedisGears' `log` writes it)."""
    out = []
    for ch in text:
        if ch in "\t\r\n":
            out.append({"\t": "\\t", "\r": "\\r", "\n": "\\n"}[ch])
        elif ch in "\\'\"":
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return "".join(out)
