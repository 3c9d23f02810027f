"""The money reconciliation (docs/reconciliation.md): did every shilling customers paid
end on the right order, exactly once?

It compares this service's payments with the order service's orders and, where
credentials are configured, with the providers. The parts, in the order they run:

- window.py:   the report's window, [from, to);
- evidence.py: what each side says (payments and refunds here, orders there, Stripe's
               PaymentIntents, STK Query for M-Pesa payments still open);
- analysis.py: from that evidence to the discrepancies and the totals, pure functions;
- report.py:   the report (a discrepancy is looked at again before it is reported: a
               payment settling meanwhile is not one) and the worker's run;
- repair.py:   what is safe to repair, through the code path of the lost webhook or
               callback (the worker repairs; the admin route only reports).
"""

from payment_service.reconciliation.analysis import KINDS, Kind, Report
from payment_service.reconciliation.report import build_report, reconcile_money, report_out
from payment_service.reconciliation.window import InvalidWindow, Window

__all__ = [
    "KINDS",
    "InvalidWindow",
    "Kind",
    "Report",
    "Window",
    "build_report",
    "reconcile_money",
    "report_out",
]
