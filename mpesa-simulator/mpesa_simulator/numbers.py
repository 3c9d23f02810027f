"""The simulator's test phone numbers (no web framework here: `make run` prints them)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    result_code: int | None  # None: Daraja never answers (the prompt is still open)
    result_desc: str
    send_callback: bool = True


# The test phone numbers: the outcome of an STK Push to each. Any other valid number pays.
TEST_NUMBERS: dict[str, tuple[str, Outcome]] = {
    "254708374149": (
        "success (Daraja's sandbox number)",
        Outcome(0, "The service request is processed successfully."),
    ),
    "254700000001": (
        "insufficient funds",
        Outcome(1, "The balance is insufficient for the transaction"),
    ),
    "254700000002": ("cancelled by the user", Outcome(1032, "Request cancelled by user")),
    "254700000003": (
        "timeout: user cannot be reached",
        Outcome(1037, "DS timeout user cannot be reached"),
    ),
    "254700000004": ("wrong PIN", Outcome(2001, "The initiator information is invalid")),
    "254700000005": (
        "success, but the callback is lost (STK Query knows)",
        Outcome(0, "The service request is processed successfully.", send_callback=False),
    ),
    "254700000006": (
        "no answer at all (STK Query: being processed, forever)",
        Outcome(None, "", send_callback=False),
    ),
}
SUCCESS = Outcome(0, "The service request is processed successfully.")
