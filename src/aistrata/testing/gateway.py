"""A real AI Strata gateway on a loopback port, for tests (yours and ours)::

    with GatewayServer(config={"model_list": [...]}, data_dir=tmp) as gw:
        openai.OpenAI(base_url=gw.url + "/v1", api_key="x")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..gateway.config import load_settings
from ..interface.app import App, create_app
from ..providers.registry import load_registry
from .serving import ThreadedServer


class GatewayServer(ThreadedServer):
    def __init__(
        self, *, data_dir: Path, config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
    ) -> None:
        config_path = None
        if config is not None:
            config_path = Path(data_dir) / "config.yaml"
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(yaml.safe_dump(dict(config)))
        registry = load_registry()
        merged = dict(os.environ) if env is None else dict(env)
        settings = load_settings(registry, config_path, Path(data_dir), env=merged)
        self.gateway_app: App = create_app(settings, registry)
        super().__init__(self.gateway_app, lifespan="on")

    @property
    def services(self) -> Any:
        return self.gateway_app.services

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every finished request is in the request log (with its span) and ingested spans are stored
        (and exported, when an exporter is set); False if either timed out."""
        logged = self.services.recorder.flush(timeout)
        return self.services.tracing.flush(timeout) and logged


class GatewayProcess:
    """A real `aistrata serve` process on a loopback port, for tests of several replicas::

        with GatewayProcess(tmp / "a", config, {"AISTRATA_REDIS_URL": redis}) as a: ...

    The process gets only the `AISTRATA_*` variables passed in `env`, never the caller's."""

    def __init__(self, workdir: Path, config: Mapping[str, Any], env: Mapping[str, str], *args: str,
                 scheme: str = "http") -> None:
        self.workdir = Path(workdir)
        self.config = dict(config)
        self.env = dict(env)
        self.args = args
        self.port = _free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.log = self.workdir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0, ready: Callable[[GatewayProcess], bool] | None = None) -> GatewayProcess:
        """Start and wait until `ready` (default: `GET /ready` answers 200)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yaml"
        config.write_text(yaml.safe_dump(self.config))
        cmd = [sys.executable, "-m", "aistrata.interface.cli", "serve", "--port", str(self.port), "--config",
               str(config), "--data-dir", str(self.workdir / "data"), "--log-level", "warning", *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AISTRATA_")} | self.env
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aistrata serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if ready(self) if ready is not None else _answers(self.url + "/ready"):
                    return self
            except Exception:  # noqa: BLE001 - not answering yet, whatever the client raises
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"aistrata serve at {self.url} not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as resp:
        return bool(resp.status == 200)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
