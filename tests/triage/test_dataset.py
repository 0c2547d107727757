"""Reading messy exports: every dropped row is counted, missing columns are named."""

from __future__ import annotations

import pytest

from baton.kernel.errors import Invalid
from baton.triage.dataset import MAX_TEXT, parse_csv, split_columns

MESSY = (
    "\ufeffsubject,body,category,site\r\n"
    'printer jam,"line one\nline two\nline three",hardware,paris\r\n'
    "no label here,body,,paris\r\n"
    "   ,   ,access,lyon\r\n"
    "\r\n"
    "vpn down,cannot connect,  network  ,lyon\r\n"
    "short row,only body\r\n"
).encode()


def test_bom_multiline_empty_labels_and_blank_text_are_reported():
    examples, report = parse_csv(MESSY, ["subject", "body"], "category", ["site"])
    assert report.bom is True
    assert report.rows == 5  # the blank line is not a row
    assert report.multiline_rows == 1
    assert report.dropped == {"empty_label": 2, "empty_text": 1}
    assert report.kept == 2
    first, second = examples
    assert first.fields["body"] == "line one\nline two\nline three"
    assert first.fields["subject"] == "printer jam"  # the BOM is not part of the header
    assert second.label == "network"  # labels are trimmed
    assert report.to_dict()["dropped"] == {"empty_label": 2, "empty_text": 1}


def test_missing_columns_are_named():
    with pytest.raises(Invalid) as caught:
        parse_csv(MESSY, ["subject", "description"], "queue")
    message = str(caught.value)
    assert "'description'" in message and "'queue'" in message
    assert "'subject'" in message.split("columns:")[1]  # and what the file does have
    with pytest.raises(Invalid, match="cannot also be a feature"):
        parse_csv(MESSY, ["subject", "category"], "category")


def test_windows_1252_and_empty_files():
    examples, _ = parse_csv(
        "subject,category\ncaf\xe9 machine,kitchen\n".encode("cp1252"), ["subject"], "category"
    )
    assert examples[0].fields["subject"] == "café machine"
    with pytest.raises(Invalid, match="empty"):
        parse_csv(b"", ["subject"], "category")


def test_column_lists():
    assert split_columns(" subject , body,") == ["subject", "body"]
    with pytest.raises(Invalid):
        split_columns(" , ")


def test_huge_texts_are_truncated_and_counted():
    raw = ("subject,category\n" + "x" * (MAX_TEXT + 50) + ",big\n").encode()
    examples, report = parse_csv(raw, ["subject"], "category")
    assert len(examples[0].fields["subject"]) == MAX_TEXT and report.truncated == 1
