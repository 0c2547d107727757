"""Charts drawn on the server as inline SVG: a review opens offline, prints to PDF as it
looks on screen, and needs no script or CDN."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

PALETTE = ("#2f6db5", "#d9822b", "#3a9b5c", "#b23b3b", "#7a5ea8")
EMPTY = Markup('<p class="empty">nothing in this period</p>')


def _svg(width: float, height: float, parts: list[Markup]) -> Markup:
    """Join pieces built with `Markup.format`, which escapes every value put in."""
    head = Markup('<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img">')
    return head.format(width, height) + Markup("").join(parts) + Markup("</svg>")


def bars(items: Sequence[tuple[str, float]], width: int = 620, row: int = 22) -> Markup:
    """Horizontal bars, one per (label, value), in the order given."""
    if not items:
        return EMPTY
    top = max(v for _, v in items) or 1
    label_w, value_w = 290, 60  # room for a 40-character label at 12 px
    span = width - label_w - value_w
    bar = Markup(
        '<text x="{lx}" y="{ty}" text-anchor="end" font-size="12">{label}</text>'
        '<rect x="{x}" y="{ry}" width="{w:.1f}" height="{h}" fill="{fill}"/>'
        '<text x="{vx:.1f}" y="{ty}" font-size="12">{value:g}</text>'
    )
    parts = []
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(1.0, span * value / top) if value else 0.0
        parts.append(
            bar.format(
                lx=label_w - 6,
                ty=round(y + row * 0.7),
                label=label[:40],
                x=label_w,
                ry=y + 3,
                w=w,
                h=row - 8,
                fill=PALETTE[0],
                vx=label_w + w + 4,
                value=value,
            )
        )
    return _svg(width, row * len(items) + 4, parts)


def columns(
    buckets: Sequence[str], series: dict[str, Sequence[float]], width: int = 620, height: int = 180
) -> Markup:
    """Grouped columns per bucket (a day or a week), one colour per named series, with
    a legend."""
    if not buckets:
        return EMPTY
    names = list(series)
    top = max((v for values in series.values() for v in values), default=0) or 1
    base, left = height - 34, 30
    slot = (width - left) / len(buckets)
    bar_w = max(2.0, (slot - 6) / max(1, len(names)))
    column = Markup(
        '<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}">'
        "<title>{name} {bucket}: {value:g}</title></rect>"
    )
    tick = Markup('<text x="{x:.1f}" y="{y}" font-size="10" text-anchor="middle">{label}</text>')
    key = Markup(
        '<rect x="{x}" y="{y}" width="10" height="10" fill="{fill}"/>'
        '<text x="{tx}" y="{ty}" font-size="11">{name}</text>'
    )
    parts = [
        Markup('<line x1="{l}" y1="{b}" x2="{w}" y2="{b}" stroke="#999"/>').format(
            l=left, b=base, w=width
        ),
        Markup('<text x="2" y="12" font-size="11">{:g}</text>').format(top),
    ]
    for i, bucket in enumerate(buckets):
        x0 = left + i * slot + 3
        for j, name in enumerate(names):
            value = series[name][i]
            h = (base - 16) * value / top
            fill = PALETTE[j % len(PALETTE)]
            parts.append(
                column.format(
                    x=x0 + j * bar_w,
                    y=base - h,
                    w=bar_w - 1,
                    h=h,
                    fill=fill,
                    name=name,
                    bucket=bucket,
                    value=value,
                )
            )
        parts.append(tick.format(x=x0 + slot / 2 - 3, y=base + 13, label=bucket[5:]))
    for j, name in enumerate(names):
        x = left + j * 130
        fill = PALETTE[j % len(PALETTE)]
        parts.append(key.format(x=x, y=height - 12, fill=fill, tx=x + 14, ty=height - 3, name=name))
    return _svg(width, height, parts)
