"""A lesson's proposed change to a runbook or to the policy, kept as a reviewable diff.

The diff is made when the review is saved, against the file as it was then, and it is
the diff that a lead applies later, not the whole file the lesson was written with: a
change made to the file meanwhile is kept when the diff still applies (its context
lines still match, as `git apply` would judge it), and a diff that no longer applies is
refused as stale, saying which hunk and why, instead of silently undoing newer work.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from baton.kernel.errors import Refused

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class StaleDiff(Refused):
    """The file changed since the lesson was written and its diff no longer applies."""


@dataclass(frozen=True)
class Hunk:
    start: int  # 1-based line of the old file where the hunk begins (0: empty file)
    old: list[str]  # the lines the hunk expects (context and removals)
    new: list[str]  # the lines it leaves (context and additions)


def ended(text: str) -> str:
    """`text` ending with a newline (unless empty), as the diffs here always treat files, so
    a missing final newline never makes a diff line run into the next."""
    return text if not text or text.endswith("\n") else text + "\n"


def make_diff(before: str, after: str, name: str) -> str:
    """A unified diff of `name` (3 lines of context; '' when nothing changes)."""
    return "".join(
        difflib.unified_diff(
            ended(before).splitlines(True),
            ended(after).splitlines(True),
            f"{name} (before)",
            f"{name} (after)",
        )
    )


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunks of a unified diff; `Refused` when it is not one."""
    hunks: list[Hunk] = []
    current: Hunk | None = None
    for line in diff.splitlines(True):
        if line.startswith(("--- ", "+++ ")) and current is None:
            continue
        if match := _HUNK.match(line):
            current = Hunk(int(match.group(1)), [], [])
            hunks.append(current)
            continue
        if current is None:
            raise Refused("not a unified diff: a line comes before the first @@ hunk header")
        if line.startswith("\\"):  # "\ No newline at end of file"
            for side in (current.old, current.new):
                if side and side[-1].endswith("\n"):
                    side[-1] = side[-1][:-1]
            continue
        tag, body = line[:1], line[1:]
        if tag == " ":
            current.old.append(body)
            current.new.append(body)
        elif tag == "-":
            current.old.append(body)
        elif tag == "+":
            current.new.append(body)
        elif line.strip() == "":  # an empty context line whose leading space was trimmed
            current.old.append("\n")
            current.new.append("\n")
        else:
            raise Refused(f"not a unified diff: unexpected line {line[:60]!r}")
    if not hunks:
        raise Refused("the diff has no hunks")
    return hunks


def apply_diff(text: str, diff: str, name: str) -> str:
    """`text` with `diff` applied. Each hunk must find its expected lines exactly, at its
    line or shifted by earlier edits to the file (the nearest place wins); otherwise
    `StaleDiff` says which hunk of `name` no longer matches."""
    lines = ended(text).splitlines(True)
    out: list[str] = []
    at = 0  # index in `lines` up to which the output is built
    shift = 0  # how far the file moved since the diff was made
    for n, hunk in enumerate(parse_hunks(diff), 1):
        wanted = max(hunk.start - 1, 0) + shift if hunk.old else hunk.start + shift
        place = _find(lines, hunk.old, wanted, at)
        if place is None:
            first = next((x.strip() for x in hunk.old if x.strip()), "")
            raise StaleDiff(
                f"{name} changed since the lesson was written: hunk {n} (line {hunk.start}, "
                f"starting {first[:60]!r}) no longer matches; write the lesson again "
                "against the current file"
            )
        shift = place - max(hunk.start - 1, 0) if hunk.old else shift
        out += lines[at:place] + hunk.new
        at = place + len(hunk.old)
    return "".join(out + lines[at:])


def _find(lines: list[str], old: list[str], wanted: int, floor: int) -> int | None:
    """Where `old` occurs in `lines` at or after `floor`, nearest `wanted` first."""
    size = len(old)
    candidates = range(floor, len(lines) - size + 1)
    for place in sorted(candidates, key=lambda p: (abs(p - wanted), p)):
        if lines[place : place + size] == old:
            return place
    return None
