"""A real AI Strata gateway on a loopback port, for tests (yours and ours)::

    with GatewayServer(config={"model_list": [...]}, data_dir=tmp) as gw:
        openai.OpenAI(base_url=gw.url + "/v1", api_key="x")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

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

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every finished request is in the request log."""
        self.services.recorder.flush(timeout)
