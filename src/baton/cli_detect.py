"""`baton detect ...`: score metric files offline with the streaming detector."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer

detect_app = typer.Typer(help="Anomaly detection on metric series.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@detect_app.command("anomalies")
def anomalies(
    source: Annotated[Path, typer.Argument(help="CSV with a timestamp,value header.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scores.")],
) -> None:
    """Write timestamp,value,anomaly_score,is_anomaly for every row of SOURCE."""
    from baton.detect import nab  # numba and numpy load only for the commands using them
    from baton.detect.metrics import DetectorConfig, score_series

    try:
        seconds, values, stamps = nab.read_csv_series(source)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    config = DetectorConfig()
    scored = score_series(seconds, values, config)
    flagged = 0
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score", "is_anomaly", "explanation"])
        for i, stamp in enumerate(stamps):
            hit = scored.score[i] >= config.threshold
            flagged += int(hit)
            why = scored.finding(i).explain() if hit else ""
            writer.writerow([stamp, values[i], f"{scored.score[i]:.6f}", int(hit), why])
    typer.echo(f"{len(stamps)} points, {flagged} anomalies -> {output}")


@detect_app.command("nab")
def nab_results(
    data: Annotated[Path, typer.Option(help="A NAB corpus (data/ and labels/).")],
    out: Annotated[Path, typer.Option(help="Results folder (NAB layout).")],
    detector: Annotated[str, typer.Option(help="Detector name in the file names.")] = "baton",
) -> None:
    """Write RESULTS/<detector>/<category>/<detector>_<file>.csv for every series."""
    from baton.detect import nab
    from baton.detect.metrics import score_series

    try:
        corpus = nab.load_corpus(data)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for series in corpus:
        _, _, stamps = nab.read_csv_series(data / "data" / series.name)
        scored = score_series(series.timestamps, series.values)
        nab.write_results(out, detector, series, stamps, scored.score)
    typer.echo(f"{len(corpus)} result files under {out / detector}")


logs_app = typer.Typer(help="Log template mining.", no_args_is_help=True)


@logs_app.command("parse")
def logs_parse(
    source: Annotated[Path, typer.Argument(help="A log file, one message per line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the CSV.")],
) -> None:
    """Write line_id,template_id,template,parameters for every line of SOURCE.

    Two passes: the first mines templates line by line (as a live stream would), the
    second writes each line with its template after the last refinement.
    """
    from baton.detect.templates import TemplateMiner, parameters, template_id

    miner = TemplateMiner()
    count = 0
    try:
        with source.open(encoding="utf-8", errors="replace", newline=None) as lines:
            for line in lines:
                miner.add(line.rstrip("\n"))
        miner.refine()
        with (
            source.open(encoding="utf-8", errors="replace", newline=None) as lines,
            output.open("w", newline="") as handle,
        ):
            writer = csv.writer(handle)
            writer.writerow(["line_id", "template_id", "template", "parameters"])
            for count, line in enumerate(lines, start=1):
                message = line.rstrip("\n")
                template = miner.template_for(message)
                writer.writerow(
                    [
                        count,
                        template_id(template),
                        template,
                        json.dumps(parameters(template, message)),
                    ]
                )
    except OSError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{count} lines, {miner.templates} templates -> {output}")


def forecast_cmd(
    source: Annotated[Path, typer.Argument(help="CSV with a timestamp,value header.")],
    threshold: Annotated[float, typer.Option(help="The capacity line to watch.")],
    horizon_days: Annotated[float, typer.Option(help="How far ahead to look.")] = 7.0,
    falling: Annotated[bool, typer.Option(help="Watch for a fall below the line.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Forecast SOURCE and say when it crosses THRESHOLD (with a 90 % interval)."""
    import numpy as np

    from baton.detect import nab
    from baton.detect.forecast import crossing, forecast

    try:
        seconds, values, _ = nab.read_csv_series(source)
        fc = forecast(seconds, values, max(1, round(horizon_days * 24)))
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    cross = crossing(fc, threshold, float(np.nanmax(seconds)), rising=not falling)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "threshold": threshold,
                    "expected_s": cross.expected,
                    "earliest_s": cross.earliest,
                    "latest_s": cross.latest,
                    "level": cross.level,
                    "summary": cross.describe(),
                }
            )
        )
    else:
        typer.echo(f"{source.name}: {cross.describe()}")
