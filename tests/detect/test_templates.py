"""Log template mining and the Loghub bench, on a small sample made here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from baton.cli import app
from baton.detect import loghub
from baton.detect.grouping import templates
from baton.detect.masking import mask
from baton.detect.templates import TemplateMiner, is_novel_error, parameters

LINES = [
    "Accepted password for alice from 10.0.0.7 port 52211 ssh2",
    "Accepted password for alice from 10.0.0.9 port 40022 ssh2",
    "proxy.example.com:5070 open through proxy proxy.example.com:5070 HTTPS",
    "www.google.com:443 open through proxy proxy.example.com:5070 HTTPS",
    "connection from 1.2.3.4 () at Sun Jul 10 03:04:05 2005",
    "connection from 1.2.3.5 () at Fri Jul 8 13:04:05 2005",
    "Disk quota exceeded on /var",
    "session opened for user news by (uid=0)",
    "session opened for user cyrus by (uid=0)",
    "Deleting instance files /var/lib/nova/instances/3f2a_del",
]


def masked(line: str) -> str:
    return " ".join(mask(line))


def test_variables_are_masked_with_one_general_configuration() -> None:
    templates = [masked(line) for line in LINES]
    # "40022 ssh2" is a run of two variables, so it becomes one
    assert templates[0] == templates[1] == "Accepted password for alice from <*> port <*>"
    assert templates[2] == templates[3] == "<*> open through proxy <*> HTTPS"
    assert templates[4] == templates[5] == "connection from <*> at <*>"
    assert templates[6] == "Disk quota exceeded on /var"
    assert templates[7] == templates[8] == "session opened for user <*> by (uid=<*>)"
    assert templates[9] == "Deleting instance files <*>"
    # a value's shape may vary: one word, one variable
    assert masked("synchronized to LOCAL(0), stratum 10") == masked(
        "synchronized to 10.100.20.250, stratum 3"
    )
    # a number with its unit, and an annotation of it, is one value
    assert masked("c.example.cn:80 close, 1314 bytes (1.28 KB) sent, lifetime 03:09") == masked(
        "proxy.example.edu.hk:5070 close, 0 bytes sent, lifetime <1 sec"
    )
    assert masked('vis=c0000700 mask=ffffffff tag="x"') == "vis=<*> mask=<*> tag=<*>"
    assert masked("Invalid user user from 1.2.3.4") == "Invalid user <*> from <*>"


def test_longest_common_pattern_groups_variables_and_splits_events() -> None:
    keys = [("removing", w) for w in ("chargen", "daytime", "echo", "time", "discard")]
    keys += [("cupsd", "startup", "ok"), ("cupsd", "shutdown", "ok")] * 1
    lengths = {len(k) for k in keys}
    found = {}
    for n in lengths:
        group = [k for k in keys if len(k) == n]
        found.update(zip(group, templates(group, [3] * len(group)), strict=True))
    assert {found[k] for k in keys[:5]} == {("removing", "<*>")}
    # two values in a position are two events, not a variable
    assert found[keys[5]] == keys[5] and found[keys[6]] == keys[6]
    # a split settles the other positions with each part's own words
    two = [("closed", "from", "<*>", "Bye", "Bye"), ("closed", "from", "<*>", "by", "user")]
    assert templates(two, [400, 1]) == two


def test_miner_streams_refines_and_keeps_ids() -> None:
    miner = TemplateMiner(refine_min=4)
    first = [miner.add(f"removing {name}") for name in ("chargen", "daytime", "echo")]
    assert all(m.new for m in first)  # nothing shows yet that the name varies
    more = [miner.add(f"removing {name}") for name in ("time", "discard", "sunrpc")]
    miner.refine()
    assert {miner.current(m) for m in first + more} == {"removing <*>"}
    later = miner.add("removing finger")
    assert later.template == "removing <*>" and not later.new  # fits the refined template
    assert later.template_id in {m.template_id for m in first + more}  # the id carried on
    assert miner.template_for("removing chargen") == "removing <*>"


def test_miner_flags_new_templates_and_memory_is_bounded() -> None:
    miner = TemplateMiner(capacity=2)
    first = miner.add("Disk quota exceeded on /var")
    again = miner.add("Disk quota exceeded on /var")
    assert first.new and not again.new and first.template_id == again.template_id
    assert is_novel_error(first, "ERROR") and not is_novel_error(again, "ERROR")
    assert not is_novel_error(first, "info")
    miner.add("a"), miner.add("b"), miner.add("c")
    assert len(miner) == 2 and miner.templates <= 2


def test_parameters_are_the_text_at_the_variables() -> None:
    template = masked(LINES[0])
    assert parameters(template, LINES[0]) == ["10.0.0.7", "52211 ssh2"]
    assert parameters("no match here", LINES[0]) == []


def sample(tmp_path: Path) -> Path:
    folder = tmp_path / "Tiny"
    (folder / "corrected").mkdir(parents=True)
    truth = [
        "Accepted password for alice from <*> port <*>",
        "Accepted password for alice from <*> port <*>",
        "<*> open through proxy <*> HTTPS",
        "<*> open through proxy <*> HTTPS",
        "connection from <*> (<*>) at <*>",
        "connection from <*> (<*>) at <*>",
        "Disk quota exceeded on /var",
        "session opened for user <*> by (uid=<*>)",
        "session opened for user <*> by (uid=<*>)",
        "Deleting instance files <*>",
    ]
    for path in (
        folder / "Tiny_2k.log_structured.csv",
        folder / "corrected" / "Tiny_2k.log_structured_corrected.csv",
    ):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["LineId", "Content", "EventId", "EventTemplate"])
            for i, (line, template) in enumerate(zip(LINES, truth, strict=True), 1):
                writer.writerow([i, line, f"E{i}", template])
    (folder / "Tiny_2k.log").write_text("\r\n".join(LINES))
    return tmp_path


def test_accuracy_metrics() -> None:
    truth = ["A", "A", "B", "C"]
    assert loghub.grouping_accuracy(["x", "x", "y", "z"], truth) == 1.0
    assert loghub.grouping_accuracy(["x", "x", "x", "z"], truth) == 0.25
    assert loghub.grouping_accuracy(["x", "y", "z", "w"], truth) == 0.5
    assert loghub.parsing_accuracy(["A", "B", "B", "C"], truth) == 0.75


def test_cli_parses_a_log_and_benches(tmp_path: Path) -> None:
    data = sample(tmp_path)
    runner = CliRunner()
    out = tmp_path / "parsed.csv"
    result = runner.invoke(app, ["logs", "parse", str(data / "Tiny/Tiny_2k.log"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    assert len(rows) == len(LINES) and rows[0]["template_id"] == rows[1]["template_id"]
    assert json.loads(rows[0]["parameters"]) == ["10.0.0.7", "52211 ssh2"]
    assert not rows[0]["template"].endswith("\r")

    result = runner.invoke(app, ["bench", "loghub", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["original_grouping_avg"] == 1.0
    assert figures["original_systems"]["Tiny"]["parsing"] == round(8 / 10, 3)
