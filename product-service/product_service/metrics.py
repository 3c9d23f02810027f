"""The product service's figures on `/metrics` (docs/operations.md, "Metrics catalogue")."""

from shared import metrics

RESERVATIONS_REFUSED = metrics.counter(
    "stock_reservations_refused_total",
    "Stock reservations refused: out_of_stock (an item short), released (the order's "
    "reservation was released before it arrived), mismatch (the order was reserved with "
    "other items)",
    ["reason"],
)
for _reason in ("out_of_stock", "released", "mismatch"):  # every series from the start, at 0
    RESERVATIONS_REFUSED.labels(reason=_reason)


def reservation_refused(reason: str) -> None:
    """A refusal changes nothing (its transaction rolls back): it is counted as answered."""
    RESERVATIONS_REFUSED.labels(reason=reason).inc()
