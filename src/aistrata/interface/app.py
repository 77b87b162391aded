"""The composition root: settings in, one ASGI application out.

The data-plane endpoints are dispatched directly (a dict lookup on the path); everything
else goes through Starlette's router. Lower layers never import this module.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette

from ..gateway.auth import Authenticator
from ..gateway.cache import build_cache
from ..gateway.config import Settings
from ..gateway.limits import build_admissions
from ..gateway.pipeline import Gateway
from ..gateway.router import Router
from ..gateway.routing import build_dispatcher
from ..gateway.state import build_state
from ..guard import build_guards
from ..observe.recorder import Recorder
from ..observe.request_recording import GatewayRecorder, PricedSink
from ..providers.http import HttpClient
from ..providers.registry import Registry
from ..store.db import Database
from ..store.keys import KeyStore
from ..store.migrations import ensure_schema
from ..store.request_log import RequestLog
from . import api
from .asgi import Receive, Scope, Send
from .data_plane import DataPlane
from .management import Management

log = logging.getLogger("aistrata")


@dataclass
class Services:
    """Everything the app holds, exposed for the CLI and tests."""

    settings: Settings
    registry: Registry
    db: Database
    keys: KeyStore
    requests: RequestLog
    recorder: Recorder
    http: HttpClient
    router: Router
    gateway: Gateway
    authn: Authenticator
    state: Any  # shared counters and states (in process or Redis)


def build_services(settings: Settings, registry: Registry) -> Services:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings.data_dir, settings.database_url)
    ensure_schema(db)
    keys = KeyStore(db)
    requests = RequestLog(db)
    recorder = Recorder(PricedSink(requests), spool_dir=Path(settings.data_dir) / "spool")
    http = HttpClient()
    router = Router(settings, registry)
    state = build_state(settings)
    input_guards, output_guards = build_guards(settings)
    gateway = Gateway(
        build_dispatcher(settings, router, registry, http, state), GatewayRecorder(recorder),
        admissions=[*build_admissions(settings, state, db, router), *input_guards],
        cache=build_cache(settings, state), output_checks=output_guards,
    )
    authn = Authenticator(settings.master_key, keys)
    return Services(settings, registry, db, keys, requests, recorder, http, router, gateway, authn, state)


class App:
    """ASGI entry point: hot paths by dict lookup, the rest through Starlette."""

    def __init__(self, services: Services) -> None:
        self.services = services
        plane = DataPlane(services.gateway, services.authn)
        self.fast = {
            "/v1/chat/completions": plane.chat_completions,
            "/chat/completions": plane.chat_completions,
            "/v1/messages": plane.messages,
            "/v1/embeddings": plane.embeddings,
            "/embeddings": plane.embeddings,
        }
        management = Management(
            services.authn, services.keys, services.requests, services.db, services.router,
            services.registry, services.http,
        )
        self.starlette = Starlette(routes=[*management.routes(), *api.routes(services)], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        s = self.services
        s.recorder.start()
        try:
            yield
        finally:
            await s.http.close()
            s.recorder.stop()
            s.db.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.fast.get(scope["path"])
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def create_app(settings: Settings, registry: Registry) -> App:
    return App(build_services(settings, registry))
