"""How many worker processes `make run` gives each service (scripts.stack)."""

from scripts.stack import service_environment, worker_processes


def test_the_payment_service_gets_two_workers_and_the_others_their_own_one():
    assert worker_processes({}, "payment") == "2"
    assert worker_processes({}, "order") is None  # the service's own default: 1
    assert service_environment({}, "payment")["WEB_CONCURRENCY"] == "2"
    assert "WEB_CONCURRENCY" not in service_environment({}, "order")


def test_web_concurrency_sets_every_service_and_a_service_own_setting_wins():
    every = {"WEB_CONCURRENCY": "3"}
    assert worker_processes(every, "payment") == "3"
    assert worker_processes(every, "order") == "3"
    assert worker_processes({**every, "PAYMENT_WEB_CONCURRENCY": "1"}, "payment") == "1"
    assert worker_processes({"MPESA_SIMULATOR_WEB_CONCURRENCY": "2"}, "mpesa-simulator") == "2"
