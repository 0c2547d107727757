"""One general masking configuration: a log message as tokens, its variable words as ``<*>``.

Masking works word by word (words are split at white space), because a value's shape
varies (``10.0.0.1`` or ``LOCAL(0)``, ``/detail`` or ``/detail?x=1&since=2017-05-16``) and
a finer split would turn one value into a different number of pieces. A word is variable
when it holds a digit; ``key=value`` and ``key:value`` keep their key (a digit-free
identifier) and mask the value; a digit-free word is variable when it is a day or month
name, a host name, an absolute path, a dotted path with a ``/`` (a Java component), a long
hex string, an empty ``()``, or the word after ``user``. A unit after a number (``5 ms``,
``3 KB``) and a run of variables become one ``<*>``, so ``0 bytes`` and
``1314 bytes (1.28 KB)`` mask alike. Nothing here is keyed to a system.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
_GLUE = r"\s,;:=\[\]\(\)\{\}\"'|<>"
_W = rf"[^{_GLUE}]"  # a word character: not space, not glue punctuation
_TLD = "com|net|org|edu|gov|io|cn|hk|uk|de|jp|ru|info|biz|co|us|local|lan"
_CALENDAR = "mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
# variable pieces of a digit-free word
_PIECE = re.compile(
    rf"(?<!{_W})(?:"
    rf"(?i:{_CALENDAR})"  # a day or month name
    rf"|/{_W}*/{_W}*"  # an absolute path
    rf"|{_W}*\.{_W}*/{_W}*|{_W}*/{_W}*\.{_W}*"  # a dotted path with a slash
    rf"|(?<=\()(?=\))"  # an empty value in brackets
    rf"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?i:{_TLD})"  # a host name
    rf"|[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{{2,6}}"  # any lower-case host of 3+ labels
    rf"|[0-9a-fA-F]{{8,}}"  # a long hex string
    rf")(?!{_W})"
)
_DIGIT = re.compile(r"\d")
_KEY_VALUE = re.compile(r"[A-Za-z_][\w.\-]*=")  # key=anything
_KEYED = re.compile(r"([^=:\d]*[=:])(?=.*\d)")  # key: or key= before a value with a digit
_ONLY_VARIABLES = re.compile(r"[^\w<>]*(?:<\*>[^\w<>]*)+")  # "(<*>)", "<*>:<*>", "<*>,"
_TAIL = re.compile(r"[)\]}>,;.]*$")  # closing punctuation a masked value keeps
_PLAIN = re.compile(r"[A-Za-z_-]+")  # the common case, checked first (speed)
_CALENDAR_WORDS = frozenset(_CALENDAR.split("|"))
UNITS = frozenset(
    {"b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "byte", "bytes", "ms", "us", "ns"}
    | {"s", "sec", "secs", "second", "seconds", "min", "mins", "minutes", "h", "hr", "hrs"}
    | {"hours", "%"}
)
_UNIT_STRIP = "()[]{},;.'\""


_CACHE: dict[str, tuple[str, bool, bool]] = {}  # word -> (token, is "user", is a unit)
_CACHE_MAX = 100_000


def _word(word: str) -> str:
    if _PLAIN.fullmatch(word) and word.lower() not in _CALENDAR_WORDS:
        return word
    tail = _TAIL.search(word).group()  # type: ignore[union-attr]  # always matches
    keyed = _KEY_VALUE.match(word)
    if keyed and keyed.end() < len(word) - len(tail):
        return word[: keyed.end()] + WILDCARD + tail
    if _DIGIT.search(word):
        keyed = _KEYED.match(word)
        if not keyed:
            return WILDCARD
        word = _PIECE.sub(WILDCARD, keyed.group(1)) + WILDCARD + tail
    else:
        word = _PIECE.sub(WILDCARD, word)
    return WILDCARD if _ONLY_VARIABLES.fullmatch(word) else word


def mask(message: str) -> tuple[str, ...]:
    """The message's tokens with variables as ``<*>`` (runs of variables as one)."""
    out: list[str] = []
    after_user = False
    cache = _CACHE
    for word in message.split():
        if after_user:
            token, after_user = WILDCARD, False
        else:
            known = cache.get(word)
            if known is None:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()  # bounded: words repeat, so it refills with the common ones
                low = word.lower()
                token = _word(word)
                known = cache[word] = (
                    token,
                    low == "user",
                    token is word and low.strip(_UNIT_STRIP) in UNITS,
                )
            token, after_user, unit = known
            if unit and out and out[-1] == WILDCARD:
                continue  # "5 ms", "3 KB)": the unit belongs to the value
        if token == WILDCARD and out and out[-1] == WILDCARD:
            continue
        out.append(token)
    return tuple(out)
