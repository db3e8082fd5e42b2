"""A real Lynkr server (``lynkr serve`` under Daphne) on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LYNKR = Path(sys.executable).parent / "lynkr"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LynkrServer:
    data_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    api_key: str = ""
    admin_password: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LYNKR_", "MODEL_", "AZURE_", "REDIS_URL", "DATABASE_URL", "DJANGO_"))
        }
        env.update(
            {
                "LYNKR_DATA_DIR": str(self.data_dir),
                "LYNKR_ENV_FILE": "/nonexistent",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "PYTHONUNBUFFERED": "1",
                # Identical prompts are repeated on purpose; cache tests switch it back on.
                "PROMPT_CACHE_ENABLED": "false",
            }
        )
        env.update(self.env_extra)
        return env

    def start(self, timeout: float = 60.0) -> LynkrServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(LYNKR), "serve", "--migrate", "--no-worker"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lynkr serve exited {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"lynkr serve did not listen within {timeout}s:\n{self.log()}")
        text = self.log()
        key = re.search(r"^\s*(sk-lynkr-\S+)\s*$", text, re.M)
        password = re.search(r"password:\s+(\S+)", text)
        self.api_key = key.group(1) if key else ""
        self.admin_password = password.group(1) if password else ""
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def lynkr(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run another ``lynkr`` command against the same data dir/database."""
        return subprocess.run(
            [str(LYNKR), *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
        )
