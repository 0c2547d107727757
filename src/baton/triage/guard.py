"""Guarding what crosses the process's edge: secrets out, instructions in.

Text from outside (alert annotations, log lines, ticket bodies, a model's own output) is
data. `fence` wraps it so a model sees where data starts and stops; `injections` says
which items look like instructions planted for a model (they are flagged in the report,
never obeyed: nothing the copilot reads can call a write, because there is none);
`redact` removes secrets before anything leaves the process.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable

REDACTED = "[redacted]"
_SECRETS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
        r"|client[_-]?secret|auth)\b(\s*[:=]\s*|\s+is\s+)(\"[^\"]*\"|'[^']*'|\S+)"
    ),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # an AWS access key id
    re.compile(r"\b(sk|xox[abpr]|ghp|gho|glpat|bt)[-_][A-Za-z0-9_-]{12,}"),  # vendor tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),  # user:password@ in a URL
)

# Cyrillic and Greek letters that look like Latin ones: folded before matching, and a
# word that mixes scripts is itself a sign of a lookalike.
_LOOKALIKE = str.maketrans(
    "аеорсухіјѕԁһкмтвнАВЕКМНОРСТХІЈЅαοερτυνκιΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhkmtbhABEKMHOPCTXIJSaoeptuvkiABEHIKMNOPTYX",
)
_INJECTION = (
    (
        "override",
        re.compile(
            r"\b(ignore|disregard|forget|override)\b.{0,40}"
            r"\b(instruction|rule|prompt|previous|above|prior)",
            re.I,
        ),
    ),
    (
        "role play",
        re.compile(r"\b(you are now|act as|new instructions|system prompt|developer mode)\b", re.I),
    ),
    (
        "asks to act",
        re.compile(
            r"\b(run|execute|trigger|launch|invoke|perform)\b.{0,40}"
            r"\b(runbook|rollback|restart|failover|scale|delete|drop|shutdown|rm -rf|command)",
            re.I,
        ),
    ),
    (
        "asks to approve",
        re.compile(
            r"\b(approve|accept|confirm|authori[sz]e)\b.{0,20}\b(all|every|any|pending|each|this)\b",
            re.I,
        ),
    ),
    (
        "fake tool call",
        re.compile(
            r"(tool_calls?|function_call|<\|?(im_start|tool|assistant|system)\|?>"
            r"|\"arguments\"\s*:|\[\[?tool)",
            re.I,
        ),
    ),
    ("role marker", re.compile(r"(^|\n)\s*(system|assistant|developer)\s*:", re.I)),
)
_WORD = re.compile(r"\w+", re.U)


def fold(text: str) -> str:
    """The text as a matcher should see it: compatibility forms and lookalikes folded,
    invisible format characters (zero-width joiners...) removed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return text.translate(_LOOKALIKE)


def _mixed_script(text: str) -> bool:
    for word in _WORD.findall(text):
        scripts = {
            unicodedata.name(ch, "?").split(" ")[0]
            for ch in word
            if ch.isalpha() and ord(ch) > 0x7F
        }
        if scripts & {"CYRILLIC", "GREEK"} and any("a" <= ch.lower() <= "z" for ch in word):
            return True
    return False


def injections(text: str) -> list[str]:
    """Why `text` looks like instructions planted for a model ([] when it does not)."""
    if not text:
        return []
    folded = fold(text)
    found = [name for name, pattern in _INJECTION if pattern.search(folded)]
    if _mixed_script(unicodedata.normalize("NFKC", text)):
        found.append("lookalike unicode")
    if any(unicodedata.category(ch) == "Cf" for ch in text):
        found.append("invisible characters")
    return found


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with secrets replaced: the known secret values given, then anything that
    has the shape of a credential."""
    for value in known:
        if value and len(value) >= 6:
            text = text.replace(value, REDACTED)
    for pattern in _SECRETS:
        text = pattern.sub(_keep_name, text)
    return text


def _keep_name(match: re.Match[str]) -> str:
    """Keep the key's name and separator (``password=``) so a reader still sees what
    was there; replace the value."""
    groups = match.groups()
    if len(groups) == 3 and groups[1] is not None and groups[0] and groups[0][0].isalpha():
        return f"{groups[0]}{groups[1]}{REDACTED}"
    if len(groups) == 1 and groups[0] and groups[0].endswith("://"):
        return f"{groups[0]}{REDACTED}@"
    return REDACTED


def fence(item_id: str, text: str) -> str:
    """Untrusted text between markers with a fresh nonce, so text cannot close the fence
    itself (it would need the nonce) and a model can tell data from instructions."""
    nonce = secrets.token_hex(6)
    body = text.replace("<<", "< <").replace(">>", "> >")
    return f"<<data {item_id} {nonce}>>\n{body}\n<<end {nonce}>>"
