"""docs/benchmarks.svg: req/s per route, direct and through the gateway, the target of
issue 11 marked. Written by hand (an SVG of rectangles and text): no plotting library
to install for one chart."""

from dataclasses import dataclass
from xml.sax.saxutils import escape

from scripts.bench.report import (
    CHECKOUT_TARGET,
    GATEWAY,
    MPESA_TARGET,
    Report,
    route_target,
)

WIDTH = 960
LABEL_WIDTH = 330
RIGHT_MARGIN = 70
BAR = 14
GROUP_GAP = 14
TOP = 58
COLOURS = {"direct": "#7f8fa6", "gateway": "#e67e22", "target": "#c0392b"}


@dataclass(frozen=True)
class Group:
    label: str
    direct: float | None
    gateway: float | None
    target: float | None


def groups(report: Report) -> list[Group]:
    found: dict[str, dict[str, float]] = {}
    for run in report.routes:
        kind = "gateway" if run.where == GATEWAY else "direct"
        found.setdefault(run.route, {})[kind] = run.result.rps
    result = []
    for route, figures in found.items():
        target = route_target(route)
        result.append(
            Group(
                route, figures.get("direct"), figures.get("gateway"), target[0] if target else None
            )
        )
    if report.checkout:
        result.append(
            Group("POST /api/orders (orders/s)", None, report.checkout.per_second, CHECKOUT_TARGET)
        )
    if report.mpesa:
        result.append(
            Group("POST /api/payments/mpesa", None, report.mpesa.per_second, MPESA_TARGET)
        )
    return result


def _ticks(top: float) -> list[int]:
    for step in (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000):
        if top / step <= 8:
            return list(range(0, int(top) + 1, step))
    return [0]


def svg(report: Report) -> str:
    bars = groups(report)
    top = (
        max(
            [1.0]
            + [
                value
                for g in bars
                for value in (g.direct, g.gateway, g.target)
                if value is not None
            ]
        )
        * 1.08
    )
    plot = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    height = TOP + len(bars) * (2 * BAR + GROUP_GAP) + 56

    def x(value: float) -> float:
        return LABEL_WIDTH + plot * value / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(f"make bench, {report.date}: requests per second")}</text>',
        f'<text x="{WIDTH / 2}" y="38" text-anchor="middle" fill="#555">'
        f"{escape(report.load)}</text>",
    ]
    bottom = height - 46
    for tick in _ticks(top):
        out.append(
            f'<line x1="{x(tick):.1f}" y1="{TOP - 6}" x2="{x(tick):.1f}" y2="{bottom}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{x(tick):.1f}" y="{bottom + 14}" text-anchor="middle" fill="#555">'
            f"{tick:,}</text>"
        )
    y = TOP
    for group in bars:
        out.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR + 4}" text-anchor="end">'
            f"{escape(group.label)}</text>"
        )
        for offset, kind, value in ((0, "direct", group.direct), (BAR, "gateway", group.gateway)):
            if value is None:
                continue
            out.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + offset}" width="{x(value) - LABEL_WIDTH:.1f}" '
                f'height="{BAR - 2}" fill="{COLOURS[kind]}"/>'
            )
            out.append(
                f'<text x="{x(value) + 4:.1f}" y="{y + offset + BAR - 4}" fill="#333">'
                f"{value:,.0f}</text>"
            )
        if group.target is not None:
            out.append(
                f'<line x1="{x(group.target):.1f}" y1="{y - 3}" x2="{x(group.target):.1f}" '
                f'y2="{y + 2 * BAR + 1}" stroke="{COLOURS["target"]}" stroke-width="2.5" '
                'stroke-dasharray="4 2"/>'
            )
        y += 2 * BAR + GROUP_GAP
    legend_y = height - 8
    for n, (kind, text) in enumerate(
        (("direct", "direct on the service"), ("gateway", "through the gateway"))
    ):
        lx = LABEL_WIDTH + n * 190
        out.append(
            f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="10" fill="{COLOURS[kind]}"/>'
        )
        out.append(f'<text x="{lx + 17}" y="{legend_y - 1}">{text}</text>')
    lx = LABEL_WIDTH + 380
    out.append(
        f'<line x1="{lx}" y1="{legend_y - 12}" x2="{lx}" y2="{legend_y + 1}" '
        f'stroke="{COLOURS["target"]}" stroke-width="2.5" stroke-dasharray="4 2"/>'
    )
    out.append(f'<text x="{lx + 7}" y="{legend_y - 1}">target (issue 11, gateway)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
