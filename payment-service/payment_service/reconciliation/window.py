"""The report's window: orders and payments created in [start, end)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class InvalidWindow(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None, default_days: float) -> "Window":
        """The report's window, [start, end): by default the last `default_days` days."""
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidWindow(f"{name} must carry a timezone (e.g. Z)")
        end = end or datetime.now(UTC)
        start = start or end - timedelta(days=default_days)
        if start >= end:
            raise InvalidWindow("from must be before to")
        if end - start > timedelta(days=366):
            raise InvalidWindow("the window is at most 366 days")
        return cls(start, end)
