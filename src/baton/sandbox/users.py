"""The people who use the estate and write to the service desk when it lets them down.

Tickets say what a person experiences ("stuck in the outbox", "502 Bad Gateway"), in
their own words, never what broke inside; triage has to work that out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

_DEPARTMENTS = (
    "Finance",
    "Sales",
    "HR",
    "Engineering",
    "Support",
    "Marketing",
    "Operations",
    "Legal",
)
_NAMES = (
    "Anna Schmidt",
    "Ben Okafor",
    "Chloe Martin",
    "David Kowalski",
    "Elena Rossi",
    "Farid Haddad",
    "Grace Liu",
    "Hugo Lefebvre",
    "Ines Costa",
    "Jonas Berg",
    "Kavya Iyer",
    "Liam O'Brien",
    "Maria Garcia",
    "Noah Fischer",
    "Olivia Brown",
    "Pavel Novak",
    "Quinn Taylor",
    "Rosa Jimenez",
    "Samir Patel",
    "Tara Nguyen",
    "Umar Sheikh",
    "Vera Ivanova",
    "Will Johnson",
    "Xin Zhao",
    "Yusuf Demir",
    "Zoe Williams",
    "Marco Bianchi",
    "Sofia Andersson",
    "Ken Tanaka",
    "Leila Ahmadi",
)


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """A ticket as the user typed it (reporter is their e-mail address)."""

    ts: datetime
    reporter: str
    subject: str
    body: str


@dataclass(frozen=True)
class User:
    name: str
    email: str
    department: str
    remote: bool

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


def _email(name: str) -> str:
    first, last = name.lower().replace("'", "").split(" ", 1)
    return f"{first}.{last.replace(' ', '')}@example.com"


USERS: tuple[User, ...] = tuple(
    User(n, _email(n), _DEPARTMENTS[i % len(_DEPARTMENTS)], remote=i % 5 in (1, 3))
    for i, n in enumerate(_NAMES)
)

_PORTAL_DEPTS = frozenset({"Sales", "Support", "Marketing", "Finance", "Operations"})


def uses(user: User, service: str) -> bool:
    """Whether `user` would notice trouble on `service`."""
    if service == "vpn":
        return user.remote
    if service == "web-portal":
        return user.department in _PORTAL_DEPTS
    return True


@dataclass(frozen=True)
class _Voice:
    """How people talk about one service: what they call it and what they see."""

    nouns: tuple[str, ...]
    seen: dict[str, tuple[str, ...]]  # symptom -> what the user sees


_VOICES: dict[str, _Voice] = {
    "web-portal": _Voice(
        ("the portal", "the customer portal", "portal.example.com", "the web shop"),
        {
            "error": (
                "it keeps saying 502 Bad Gateway",
                "half the pages show an error",
                "I get 'Something went wrong, please try again later'",
                "orders won't go through, it shows an error at the last step",
            ),
            "slow": (
                "pages take forever to load",
                "it is painfully slow, every click spins",
                "it times out when I open the orders page",
            ),
            "down": (
                "it doesn't load at all",
                "I just get 'This site can't be reached'",
                "it's completely down for me and my team",
            ),
            "cert": (
                "the browser says my connection is not private",
                "Chrome shows NET::ERR_CERT_DATE_INVALID",
            ),
        },
    ),
    "auth-sso": _Voice(
        ("login", "single sign-on", "the SSO login page", "signing in"),
        {
            "error": (
                "I can't log in, it says 'authentication service unavailable'",
                "after I enter my password it bounces back to the login page",
                "every app asks me to log in and then fails",
            ),
            "slow": ("logging in takes minutes", "the login page hangs after the password step"),
            "down": ("I can't log into anything", "the login page won't even open"),
            "cert": (
                "the login page shows a security warning about the certificate",
                "my browser blocks the sign-in page, says the certificate expired",
            ),
        },
    ),
    "email-smtp": _Voice(
        ("email", "Outlook", "my mail", "sending mail"),
        {
            "error": (
                "Outlook won't send mail, everything is stuck in the outbox",
                "I get bounce-backs for every email I send",
                "mail sending fails with 'server unavailable'",
            ),
            "slow": ("emails take ages to arrive", "messages sit in the outbox for ages"),
            "down": ("Outlook says it's disconnected", "no email in or out since this morning"),
            "cert": ("Outlook keeps warning that the server certificate is invalid",),
        },
    ),
    "vpn": _Voice(
        ("the VPN", "VPN", "remote access", "the VPN connection"),
        {
            "error": (
                "the VPN drops every few minutes",
                "VPN connects and then disconnects",
                "I can't connect to the VPN, it fails at 'authenticating'",
            ),
            "slow": ("the VPN is so slow I can't work", "everything over VPN crawls"),
            "down": ("I can't connect to the VPN at all", "VPN says the server is unreachable"),
            "cert": ("the VPN client complains about the server certificate",),
        },
    ),
    "hr-portal": _Voice(
        ("the HR portal", "the leave request system", "the payslip site"),
        {
            "error": (
                "it errors when I submit my leave request",
                "I can't open my payslip, it shows an error",
            ),
            "slow": ("the HR portal takes forever", "submitting timesheets times out"),
            "down": ("the HR portal won't load", "the HR site is down"),
            "cert": ("the HR portal shows a certificate warning",),
        },
    ),
    "file-storage": _Voice(
        ("the shared drive", "the S: drive", "the file share", "our team folder"),
        {
            "error": (
                "I can't save anything to the shared drive, it says access denied or "
                "the disk is full",
                "saving files fails with an error",
                "Excel says it can't save to the S: drive",
            ),
            "slow": ("opening files from the share takes ages", "the S: drive is very slow"),
            "down": ("the S: drive is disconnected", "I can't reach the shared drive at all"),
            "cert": ("Windows warns about the file server's certificate",),
        },
    ),
    "wiki": _Voice(
        ("the wiki", "the intranet wiki", "Confluence"),
        {
            "error": ("wiki pages show an error", "I can't edit pages on the wiki"),
            "slow": ("the wiki is really slow", "wiki pages take ages to open"),
            "down": ("the wiki is down", "the intranet wiki won't load"),
            "cert": ("the wiki shows a certificate warning",),
        },
    ),
}

_GREETINGS = (
    "Hi,",
    "Hello,",
    "Hi team,",
    "Hello IT,",
    "Good morning,",
    "Hey,",
    "Dear support,",
    "",
)
_CLOSINGS = ("Thanks,", "Thank you!", "Cheers,", "Thanks in advance,", "Regards,", "Best,")
_EXTRAS = (
    "I already restarted my laptop.",
    "My colleagues have the same problem.",
    "Tried another browser, same thing.",
    "This is blocking my work.",
    "Could you please have a look asap?",
    "It worked fine yesterday.",
    "A customer is waiting on me.",
    "",
)
_SUBJECTS = (
    "{Noun} not working",
    "Problem with {noun}",
    "Can't use {noun}",
    "{Noun} issue",
    "URGENT: {noun}",
    "{Noun} - error",
    "Is {noun} down?",
    "Help with {noun} please",
)
_SLOW_SUBJECTS = ("{Noun} very slow", "{Noun} extremely slow today", "Slowness on {noun}")

_EVERYDAY: tuple[tuple[str, str], ...] = (
    ("Password reset", "I forgot my password after the holidays, can you reset it please?"),
    ("Account locked", "My account got locked after too many attempts. Can you unlock it?"),
    ("Access request: Finance share", "I need read access to the Finance folder for the audit."),
    ("Laptop disk full", "My laptop says the disk is almost full and it is getting slow."),
    ("Printer not printing", "The printer on the 3rd floor shows 'offline' for everyone."),
    ("Software request", "Could you install Tableau Desktop on my laptop? My manager approved."),
    ("New starter", "We have a new colleague starting Monday, they need an account and laptop."),
    ("Second monitor", "My second monitor is not detected since the docking station update."),
    ("Teams microphone", "People can't hear me in Teams calls, the headset works elsewhere."),
    ("Phone setup", "I got a new phone, how do I set up my work email on it?"),
)


def _since(now: datetime, since: datetime) -> str:
    minutes = max(1, int((now - since).total_seconds() // 60))
    h = since.hour
    if minutes < 20:
        return "for the last few minutes"
    if minutes < 90:
        return f"for about {minutes // 5 * 5} minutes now"
    if 5 <= h < 12:
        return f"since {h} this morning" if h > 5 else "since early this morning"
    if h == 12:
        return "since lunch"
    return f"since about {since:%H:%M}"


class TicketWriter:
    """Decides who writes in, when, and puts it in their words."""

    def __init__(self, rng: random.Random, user_facing: list[str]) -> None:
        self._r = rng
        self._users = {s: [u for u in USERS if uses(u, s)] for s in user_facing}
        self._complained: dict[str, set[str]] = {s: set() for s in user_facing}

    def on_degraded(
        self,
        now: datetime,
        service: str,
        symptom: str,
        severity: float,
        since: datetime,
        dt: float,
    ) -> TicketDraft | None:
        """Maybe one ticket about `service` this step (a user writes only once per episode)."""
        r = self._r
        hour = now.hour
        awake = 1.0 if 8 <= hour < 18 and now.weekday() < 5 else 0.35 if 7 <= hour < 22 else 0.08
        p = min(0.35, 0.09 * min(1.0, severity) * awake * dt / 30.0)
        if r.random() >= p:
            return None
        done = self._complained[service]
        fresh = [u for u in self._users[service] if u.email not in done]
        if not fresh:
            return None
        user = r.choice(fresh)
        done.add(user.email)
        return self._write(now, user, service, symptom, since)

    def episode_over(self, service: str) -> None:
        """The service is healthy again; next time, the same people may write in."""
        self._complained[service].clear()

    def everyday(self, now: datetime, dt: float) -> TicketDraft | None:
        """The background trickle of ordinary requests (a handful per working day)."""
        r = self._r
        busy = 8 <= now.hour < 18 and now.weekday() < 5
        p = (0.006 if busy else 0.0006) * dt / 30.0
        if r.random() >= p:
            return None
        user = r.choice(USERS)
        subject, text = r.choice(_EVERYDAY)
        body = f"{r.choice(_GREETINGS)}\n\n{text}\n\n{r.choice(_CLOSINGS)}\n{user.first_name}"
        return TicketDraft(now, user.email, subject, body.lstrip())

    def _write(
        self, now: datetime, user: User, service: str, symptom: str, since: datetime
    ) -> TicketDraft:
        r = self._r
        voice = _VOICES.get(service) or _Voice(
            (f"the {service.replace('-', ' ')}",),
            {
                "error": ("it shows errors",),
                "slow": ("it is very slow",),
                "down": ("it doesn't work at all",),
                "cert": ("it shows a certificate warning",),
            },
        )
        noun = r.choice(voice.nouns)
        seen = r.choice(voice.seen.get(symptom) or voice.seen["error"])
        subjects = _SLOW_SUBJECTS if symptom == "slow" else _SUBJECTS
        subject = r.choice(subjects).format(noun=noun, Noun=noun[:1].upper() + noun[1:])
        opener = r.choice(
            (
                f"I'm having trouble with {noun} {_since(now, since)}: {seen}.",
                f"{seen[:1].upper() + seen[1:]} ({noun}), {_since(now, since)}.",
                f"For a while now {noun} is not working properly - {seen}.",
                f"Not sure who to ask, but {noun} is broken for me: {seen}.",
                f"{noun[:1].upper() + noun[1:]}: {seen}. Been like this {_since(now, since)}.",
            )
        )
        extra = r.choice(_EXTRAS)
        greeting = r.choice(_GREETINGS)
        parts = [p for p in (greeting, opener + (" " + extra if extra else "")) if p]
        body = "\n\n".join(parts) + f"\n\n{r.choice(_CLOSINGS)}\n{user.first_name}"
        if r.random() < 0.3:
            body += f"\n{user.department}"
        return TicketDraft(now, user.email, subject, body)
