"""`make reconcile`: the money reconciliation report of a running system, as a table.

Asks the gateway for `GET /api/payments/admin/reconciliation` as the admin (the
credentials `make seed` uses: ADMIN_EMAIL / ADMIN_PASSWORD, else the development admin)
and prints the totals per currency and every discrepancy with the action to take.

Exit status: 0 when every payment landed on its order exactly once (no discrepancy, every
difference zero); 1 when anything is wrong; 2 when the report could not be made (the
gateway, the admin login or the order service). Made for cron and CI.
See docs/reconciliation.md.
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from scripts.gateway import ScriptError, admin_credentials, check_gateway, gateway_url, login
from scripts.stack import load_environment

REPORT_PATH = "/api/payments/admin/reconciliation"


def fetch_report(env: dict[str, str], params: dict[str, str]) -> dict:
    with httpx.Client(base_url=gateway_url(env), timeout=120) as client:
        check_gateway(client)
        token = login(client, *admin_credentials(env), "admin")
        response = client.get(
            REPORT_PATH, params=params, headers={"Authorization": f"Bearer {token}"}
        )
    if response.status_code != 200:
        raise ScriptError(f"the report: {response.status_code} {response.text[:300]}")
    return response.json()


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _figure(figure: dict) -> str:
    return f"{figure['count']} / {figure['amount']}"


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def render(report: dict) -> list[str]:
    lines = [f"window: {report['from']} .. {report['to']}"]
    lines += [f"{name}: {state}" for name, state in report["providers"].items()]
    lines.append("")
    header = ("currency", "payments completed", "refunds", "payments kept", "orders paid")
    rows = [(*header, "difference", "paid in cash")]
    rows += [
        (
            t["currency"],
            _figure(t["paymentsCompleted"]),
            _figure(t["refunds"]),
            _figure(t["paymentsKept"]),
            _figure(t["ordersPaid"]),
            t["difference"],
            _figure(t["ordersPaidInCash"]),
        )
        for t in report["totals"]
    ]
    if report["totals"]:
        lines += ["totals (count / amount):", *table(rows)]
    else:
        lines.append("totals: no payments and no paid orders in the window")
    lines.append("")
    discrepancies = report["discrepancies"]
    if not discrepancies:
        lines.append("discrepancies: none")
    else:
        lines.append(f"discrepancies: {len(discrepancies)}")
        rows = [("kind", "order", "payments", "amount", "order total", "age")]
        for d in discrepancies:
            rows.append(
                (
                    d["kind"],
                    d["orderId"] or "-",
                    ",".join(d["paymentIds"]) or "-",
                    f"{d['amount']} {d['currency']}" if d["amount"] else "-",
                    d["orderAmount"] or "-",
                    _age(d["ageSeconds"]),
                )
            )
        rendered = table(rows)
        lines.append(rendered[0])
        for line, d in zip(rendered[1:], discrepancies, strict=True):
            lines.append(line)
            lines.append(f"    action: {d['action']}")
            if d["repair"]:
                lines.append(f"    repaired by the worker: {d['repair']}")
    lines.append("")
    lines.append("OK: every payment is on its order, once" if report["ok"] else "NOT OK")
    return lines


def window_params(args: argparse.Namespace) -> dict[str, str]:
    params: dict[str, str] = {}
    if args.days is not None:
        now = datetime.now(UTC)
        params = {"from": (now - timedelta(days=args.days)).isoformat(), "to": now.isoformat()}
    if args.start:
        params["from"] = args.start
    if args.end:
        params["to"] = args.end
    return params


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="make reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", help="ISO 8601 with a timezone")
    parser.add_argument("--to", dest="end", help="ISO 8601 with a timezone (default: now)")
    parser.add_argument("--days", type=float, help="the last DAYS days (default: the service's)")
    parser.add_argument("--json", action="store_true", help="the report as the API answers it")
    args = parser.parse_args(argv)
    try:
        report = fetch_report(load_environment(), window_params(args))
    except ScriptError as exc:
        print(f"reconcile | {exc}", file=sys.stderr, flush=True)
        return 2
    if args.json:
        say(json.dumps(report, indent=2))
    else:
        for line in render(report):
            say(line)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
