"""Where drills keep their scorecards: one private home per drill under
`$BATON_HOME/drills/<person>/<number>`, with its scorecard beside its database, so the
console and the CLI can show who has practised what without opening any drill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from baton.runtime.settings import Settings

SCORECARD = "scorecard.json"


def drills_root(settings: Settings) -> Path:
    return settings.home / "drills"


def new_home(settings: Settings, person: str) -> Path:
    """A fresh drill directory for `person` (numbered from 001)."""
    if not person or "/" in person or person.startswith("."):
        raise ValueError("a drill needs the trainee's name (no slashes)")
    root = drills_root(settings) / person
    root.mkdir(parents=True, exist_ok=True)
    home = root / f"{1 + sum(1 for p in root.iterdir() if p.is_dir()):03d}"
    home.mkdir()
    return home


def save(home: Path, card: dict[str, Any]) -> None:
    (home / SCORECARD).write_text(json.dumps(card, indent=2, default=str))


def on_record(settings: Settings) -> list[dict[str, Any]]:
    """Every drill's scorecard, per person: who has practised what."""
    root = drills_root(settings)
    if not root.exists():
        return []
    cards = []
    for path in sorted(root.glob(f"*/*/{SCORECARD}")):
        card = json.loads(path.read_text())
        card["drill"] = f"{path.parent.parent.name}/{path.parent.name}"
        cards.append(card)
    return cards
