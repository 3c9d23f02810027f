import logging
import os

import uvicorn

from mpesa_simulator.app import SimulatorSettings

settings = SimulatorSettings.from_environment()
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
uvicorn.run(
    "mpesa_simulator.app:create_app",
    factory=True,
    host=os.environ.get("MPESA_SIMULATOR_HOST", "127.0.0.1"),
    port=settings.port,
    log_config=None,
    access_log=False,
)
