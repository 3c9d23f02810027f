import logging
import os
import socket

import uvicorn

from mpesa_simulator.app import SimulatorSettings

settings = SimulatorSettings.from_environment()
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
# A listening socket a parent bound and handed over (LISTEN_FD, as shared.server reads
# it: the simulator does not depend on shared): it serves there instead of on its port.
listen_fd = os.environ.pop("LISTEN_FD", None)
handed_over = socket.socket(fileno=int(listen_fd)) if listen_fd else None
config = uvicorn.Config(
    "mpesa_simulator.app:create_app",
    factory=True,
    host=os.environ.get("MPESA_SIMULATOR_HOST", "127.0.0.1"),
    port=0 if handed_over else settings.port,
    log_config=None,
    access_log=False,
)
uvicorn.Server(config).run(sockets=[handed_over] if handed_over else None)
