"""The pure parts of `make bench` (scripts/bench/): wrk's output read, the tables, the
targets of issue 11 judged, the README's section replaced, the chart drawn. No speed is
measured here."""

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from scripts.bench import chart, report
from scripts.bench.memory import MIB, ProcessMemory, process_name
from scripts.bench.report import Checkout, Mpesa, Report, RouteRun
from scripts.bench.wrk import WrkResult, milliseconds, parse

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:5000/api/products?limit=10
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    52.30ms   20.65ms 326.16ms   89.54%
    Req/Sec   234.60     98.87     1.24k    75.00%
  Latency Distribution
     50%   48.82ms
     75%   60.36ms
     90%   75.56ms
     99%    1.02s
  4675 requests in 10.01s, 1.62MB read
  Socket errors: connect 0, read 0, write 0, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:    467.05
Transfer/sec:    165.76KB
statuses: 200=4663 503=12
example 503: {"error": "Service busy, retry later"}
"""


def result(rps: float, p99: float = 50.0, requests: int = 1000, non2xx: int = 0) -> WrkResult:
    return WrkResult(
        rps=rps,
        p50=10.0,
        p99=p99,
        requests=requests,
        non2xx=non2xx,
        errors="",
        unanswered=0,
        seconds=10.0,
    )


def test_wrk_output_is_read_into_figures():
    figures = parse(WRK_OUTPUT)
    assert figures.rps == 467.05
    assert figures.p50 == 48.82
    assert figures.p99 == 1020.0
    assert figures.requests == 4675
    assert figures.non2xx == 12
    assert figures.unanswered == 7
    assert figures.errors == "connect 0, read 0, write 0, timeout 7"
    assert figures.seconds == pytest.approx(10.01)
    assert figures.ok_per_second == pytest.approx((4675 - 12) / 10.01)
    assert figures.statuses == {200: 4663, 503: 12}
    assert figures.examples == {503: '{"error": "Service busy, retry later"}'}


def test_wrk_output_without_errors_nor_non_2xx():
    lines = [
        line
        for line in WRK_OUTPUT.splitlines()
        if not line.startswith(("  Socket errors", "  Non-2xx", "statuses", "example"))
    ]
    figures = parse("\n".join(lines))
    assert (figures.non2xx, figures.unanswered, figures.errors) == (0, 0, "")
    assert figures.statuses == {} and figures.examples == {}


def test_wrk_output_without_figures_is_an_error():
    with pytest.raises(ValueError, match="no figures"):
        parse("unable to connect to 127.0.0.1:1 Connection refused")


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("4.31ms", 4.31), ("1.02s", 1020.0), ("1.50m", 90000.0)]
)
def test_wrk_durations_in_milliseconds(text, ms):
    assert milliseconds(text) == pytest.approx(ms)


def test_a_duration_wrk_never_prints_is_refused():
    with pytest.raises(ValueError):
        milliseconds("12 ms")


def test_a_service_process_is_named_after_its_package():
    assert process_name(["/usr/bin/python3", "-m", "product_service"]) == "product_service"
    assert process_name(["/usr/bin/python3", "-c", "from multiprocessing.spawn import x"]) == (
        "worker"
    )
    tracker = ["python3", "-c", "from multiprocessing.resource_tracker import main;main(5)"]
    assert process_name(tracker) == "resource tracker"


def full_report() -> Report:
    routes = []
    for route, direct, through in (
        ("GET /health", 7000, 6000),
        ("GET /api/products?limit=10", 2000, 1900),
        ("GET /api/products/:id", 2600, 2400),  # below its target of 2,500
        ("GET /api/products?search=<word>&limit=20", 900, 850),
        ("GET /api/cart", 1200, 1100),
        ("GET /api/auth/profile", 2100, 2000),
    ):
        routes.append(RouteRun(route, "product service", result(direct)))
        routes.append(RouteRun(route, report.GATEWAY, result(through)))
    return Report(
        machine="2 cores (test CPU)",
        date="2026-12-05 14:00 UTC",
        commit="abc1234",
        load="wrk -t2 -c32",
        catalogue="10,000 products",
        routes=routes,
        checkout=Checkout(
            result=result(320, requests=3200),
            buyers=6,
            connections=16,
            seconds=10,
            orders=4000,
            created=3200,
            stock_before=1_000_000,
            units=4000,
            stock_after=996_000,
        ),
        mpesa=Mpesa(result=result(150, requests=1500, non2xx=0), pool=2000, seconds=10),
        idle=[ProcessMemory(10, "product_service", 90 * MIB), ProcessMemory(11, "x", 120 * MIB)],
        loaded=[ProcessMemory(10, "product_service", 95 * MIB)],
    )


def test_targets_are_judged_on_the_gateways_figures():
    judged = {t.what: t for t in report.targets(full_report())}
    assert judged["`GET /api/products?limit=10`"].met is True
    assert judged["`GET /api/products/:id`"].met is False
    assert judged["`GET /api/products/:id`"].measured == "2,400 req/s, p99 50 ms"
    assert judged["`POST /api/orders`, one line, 16 connections"].met is True
    assert judged["M-Pesa initiation `POST /api/payments/mpesa` (simulator)"].measured == (
        "150 req/s"
    )
    memory = judged["idle memory"]
    assert memory.met is False and "largest 120 MiB (x)" in memory.measured


def checkout_target(checkout: Checkout) -> report.Target:
    broken = full_report()
    broken.checkout = checkout
    [target] = [t for t in report.targets(broken) if "POST /api/orders" in t.what]
    return target


def test_a_checkout_whose_stock_stays_off_fails_its_target():
    checkout = full_report().checkout
    assert checkout is not None
    off = dataclasses.replace(checkout, stock_after=995_994)
    assert not off.exact
    assert checkout_target(off).met is False
    assert (
        checkout_target(off).measured
        == "320 orders/s, stock exact: no (+6 units off 2 s after the run)"
    )
    still_off = dataclasses.replace(
        off, settled_units=4100, settled_stock=995_894, settled_after=156.0
    )
    assert checkout_target(still_off).met is False
    assert "995,894" in "\n".join(report.checkout_lines(still_off))


def test_a_checkout_stock_exact_once_the_sweeper_released_counts_with_its_delay():
    checkout = full_report().checkout
    assert checkout is not None
    settled = dataclasses.replace(
        checkout, stock_after=995_994, settled_units=4100, settled_stock=995_900, settled_after=97.4
    )
    assert settled.exact and not settled.exact_at_once
    assert checkout_target(settled).met is True
    assert checkout_target(settled).measured == (
        "320 orders/s, stock exact: yes, 97 s after the run (+6 units off 2 s after the run)"
    )


def test_parts_not_run_are_not_measured_rather_than_failed():
    judged = report.targets(Report("m", "d", "c", "l", "cat"))
    assert {t.met for t in judged} == {None}


def test_the_document_holds_the_machine_commit_tables_and_ratios():
    text = report.document(full_report())
    assert "- machine: 2 cores (test CPU)" in text
    assert "- commit: `abc1234`" in text
    assert "![req/s per route, direct and through the gateway](benchmarks.svg)" in text
    assert "| `GET /api/products/:id` | ≥ 2,500 req/s, p99 ≤ 100 ms | 2,400 req/s" in text
    # The gateway's row carries its ratio to the direct one: 2,400 / 2,600.
    assert "| `GET /api/products/:id` | gateway | 2,400 | 10.0 | 50.0 | 0 | 0.92 |" in text
    assert "1,000,000 - 4,000 = 996,000" in text
    assert "| x | 11 | 120 | gone | ⚠ above 100 MiB idle |" in text


def test_the_readme_section_is_replaced_between_its_markers():
    markers = f"{report.README_START}\nold\n{report.README_END}"
    readme = f"# Shop\n\n## Performance\n\n{markers}\n\nmore\n"
    section = report.readme_section(full_report())
    replaced = report.replace_section(readme, section)
    assert replaced.startswith("# Shop\n\n## Performance\n\n" + report.README_START)
    assert replaced.endswith(report.README_END + "\n\nmore\n")
    assert "old" not in replaced
    assert "| `GET /api/cart` | 1,100 | 10.0 | 50.0 |" in replaced
    assert "320 orders/s" in replaced and "stock exact afterwards: yes" in replaced
    # The README shows what was measured, not the targets.
    assert "≥" not in section
    # Again: the same text, not a second section.
    assert report.replace_section(replaced, section) == replaced


def test_a_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="no <!-- make bench: start -->"):
        report.replace_section("# Shop\n", "section")


def test_the_chart_is_svg_with_two_bars_a_route_and_the_targets():
    document = ET.fromstring(chart.svg(full_report()))  # noqa: S314 (made here, not untrusted)
    svg = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in document.iter(f"{svg}text")]
    assert "GET /api/products/:id" in labels and "POST /api/orders (orders/s)" in labels
    bars = [r for r in document.iter(f"{svg}rect") if r.get("fill") in chart.COLOURS.values()]
    # 6 routes x 2 bars, checkout and M-Pesa one each, and the 2 squares of the legend.
    assert len(bars) == 6 * 2 + 2 + 2
    targets = [
        line
        for line in document.iter(f"{svg}line")
        if line.get("stroke") == chart.COLOURS["target"]
    ]
    # /health has no target: 5 routes, checkout, M-Pesa, and the legend's mark.
    assert len(targets) == 5 + 2 + 1
    widths = {float(r.get("width", 0)) for r in bars}
    assert max(widths) <= chart.WIDTH - chart.LABEL_WIDTH


def test_the_first_answer_of_each_failing_status_is_shown():
    with_answers = full_report()
    assert with_answers.mpesa is not None
    failing = dataclasses.replace(
        with_answers.mpesa.result,
        statuses={200: 1400, 409: 100},
        examples={409: '{"error":"A payment for this order is already in `progress`"}'},
    )
    with_answers.mpesa = dataclasses.replace(with_answers.mpesa, result=failing)
    text = report.document(with_answers)
    assert "| 150 | 10.0 | 50.0 | 200: 1,400, 409: 100 |" in text
    assert '- 409: `{"error":"A payment for this order is already in \'progress\'"}`' in text


def test_cpu_per_request_by_process_and_its_summary():
    from scripts.bench.cpu import per_request, summary

    before = {"api_gateway": 10.0, "product_service": 20.0, "postgres": 5.0, "auth_service": 1.0}
    after = {"api_gateway": 10.5, "product_service": 21.0, "postgres": 5.2, "auth_service": 1.0}
    used = per_request(before, after, requests=1000)
    assert used == pytest.approx({"api_gateway": 500, "product_service": 1000, "postgres": 200})
    assert summary(used) == "product_service 1,000 + api_gateway 500 + postgres 200 = 1,700"
    assert per_request(before, after, requests=0) == {}


def test_cpu_snapshot_path_this_machines_processes():
    import os

    from scripts.bench.cpu import snapshot

    # The supervisor's own CPU time counts under its name; PostgreSQL's as one.
    taken = snapshot(os.getpid())
    assert taken["scripts.stack (supervisor)"] > 0
    assert "postgres" in taken
