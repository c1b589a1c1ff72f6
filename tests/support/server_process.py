"""The app served by waitress in a process of its own, which a test may kill.

``ServerProcess(settings)`` starts ``python -m tests.support.server_process``
with the settings as JSON on its standard input; the child builds the app,
binds a free port of 127.0.0.1 and prints it, so the parent awaits that line
(no polling) before posting. Tests SIGKILL it to play a crashed server.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(self, settings: dict, threads: int = 8):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.server_process", str(threads)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.process.stdin.write(json.dumps(settings))
        self.process.stdin.close()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            raise RuntimeError(f"the server exited with {self.process.returncode}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or an OOM kill."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.stdout.close()


def _serve() -> None:
    import waitress

    from stethoscope import main

    settings = json.loads(sys.stdin.read())
    app = main({}, **settings)
    server = waitress.create_server(
        app, host="127.0.0.1", port=0, threads=int(sys.argv[1])
    )
    print(server.effective_port, flush=True)
    server.run()


if __name__ == "__main__":
    _serve()
