"""The composition root: settings in, one ASGI application out.

The data-plane endpoints are dispatched directly (a dict lookup on the path); everything
else goes through Starlette's router. Lower layers never import this module.
"""

from __future__ import annotations

import contextlib
from functools import partial
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette

from ..gateway.auth import Authenticator
from ..gateway.cache import build_cache
from ..gateway.config import Settings
from ..gateway.limits import BudgetEvent, LimitsAndBudgets, build_admissions
from ..gateway.pipeline import Gateway
from ..gateway.router import Router
from ..gateway.routing import build_dispatcher
from ..gateway.state import build_state
from ..guard import build_guards
from ..observe.alerts import Alerts
from ..observe.evals import Evaluations
from ..observe.metrics import GatewayMetrics
from ..observe.recorder import Recorder
from ..observe.request_recording import CostOnFinish, GatewayRecorder, RequestSink
from ..observe.traces import TraceSettings, Tracing
from ..providers.http import HttpClient
from ..providers.registry import Registry
from ..store.db import Database
from ..store.keys import KeyStore
from ..store.migrations import ensure_schema
from ..store.request_log import RequestLog
from .perimeter import Perimeter
from ..security.service import Security
from . import api, openapi
from .api import security as security_api
from .api import traces as traces_api
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
    tracing: Tracing
    metrics: GatewayMetrics
    evals: Evaluations
    alerts: Alerts
    security: Security


def build_services(settings: Settings, registry: Registry) -> Services:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings.data_dir, settings.database_url)
    ensure_schema(db)
    keys = KeyStore(db)
    observe = settings.raw.get("observe") or {}
    metrics = GatewayMetrics(int(observe.get("metrics_max_label_values", 50)))
    trace_settings = TraceSettings.from_config(settings.raw)
    spool = Path(settings.data_dir) / "spool"
    state = build_state(settings)
    security = Security.from_settings(settings, db, state)
    codec = security.protection
    tracing = Tracing(trace_settings, db, spool, codec)
    requests = RequestLog(db, codec)
    # Each request's row is also its gateway span: masked as spans are, then exported as one.
    sink = RequestSink(requests, codec.mask if codec is not None else None, tracing.exporter)
    recorder = trace_settings.recorder(metrics.metered(sink), spool_dir=spool)
    metrics.track_recorder("requests", recorder)
    metrics.track_recorder("spans", tracing.spans)
    if tracing.exporter is not None:
        metrics.track_recorder("otlp_export", tracing.exporter)
    http = HttpClient()
    router = Router(settings, registry)
    input_guards, output_guards = build_guards(settings)
    # `observe.enabled: false` stops the request log and traces; metrics and the audit of
    # refusals are not recordings and go on.
    recording = tracing.settings.enabled
    hooks = GatewayRecorder(recorder if recording else None,
                            [metrics, security.auditor] if recording
                            else [metrics, CostOnFinish(metrics), security.auditor], tracing.capture)
    dispatcher = build_dispatcher(settings, router, registry, http, state)
    gateway = Gateway(
        dispatcher, hooks,
        # Kill switches run first, before anything is reserved or scanned.
        admissions=[*security.admissions(router, dispatcher), *build_admissions(settings, state, db, router),
                    *input_guards],
        cache=build_cache(settings, state), output_checks=output_guards,
    )
    authn = Authenticator(settings.master_key, keys, jwt=security.jwt)
    evals = Evaluations(db, gateway, settings.raw.get("evaluations"))
    if recording:
        hooks.observers.append(evals.worker)  # after the gateway exists: judges call through it
    alerts = Alerts(db, lambda: http.session, settings.raw.get("alerts"), observe)
    for stage in gateway.admissions:
        if isinstance(stage, LimitsAndBudgets):
            stage.budgets.hooks.append(partial(_budget_alert, alerts))
    return Services(settings, registry, db, keys, requests, recorder, http, router, gateway, authn, state, tracing,
                    metrics, evals, alerts, security)


def _budget_alert(alerts: Alerts, event: BudgetEvent) -> None:
    """Soft budget limits feed the `budget_soft_limit` alert rules."""
    if event.kind == "soft_limit":
        alerts.notify_budget_event(event.scope, event.subject, event.spent_usd, event.max_usd,
                                   budget=event.budget, soft_usd=event.soft_usd)


class App:
    """ASGI entry point: hot paths by dict lookup, the rest through Starlette."""

    def __init__(self, services: Services) -> None:
        self.services = services
        plane = DataPlane(services.gateway, services.authn, services.security.settings.max_body_bytes)
        self.fast = {
            "/v1/chat/completions": plane.chat_completions,
            "/chat/completions": plane.chat_completions,
            "/v1/messages": plane.messages,
            "/v1/embeddings": plane.embeddings,
            "/embeddings": plane.embeddings,
        }
        management = Management(
            services.authn, services.keys, services.requests, services.db, services.router,
            services.registry, services.http, services.state, services.gateway.cache,
        )
        # Traces first: `/api/requests/export` must win over management's `/api/requests/{id}`.
        routes = [*traces_api.routes(services), *management.routes(), *api.routes(services),
                  *security_api.routes(services)]
        routes.append(openapi.route(routes, sorted(services.router.groups)))
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        # Body cap, read-only mode, audit of management writes and the access log.
        self.perimeter = Perimeter(self.starlette, services.security, routes)
        self.logged_fast = services.security.settings.access_log

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        s = self.services
        s.recorder.start()
        s.tracing.start()
        s.evals.worker.start()
        s.alerts.start()
        await s.security.start()
        try:
            yield
        finally:
            await s.security.stop()
            await s.alerts.stop()
            await s.evals.worker.stop()
            await s.registry.aclose()
            await s.http.close()
            await s.tracing.stop()
            s.recorder.stop()
            s.db.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.fast.get(scope["path"])
            if handler is not None:
                if self.logged_fast:
                    await self.perimeter.logged(handler, scope, receive, send)
                else:
                    await handler(scope, receive, send)
                return
        await self.perimeter(scope, receive, send)


def create_app(settings: Settings, registry: Registry) -> App:
    return App(build_services(settings, registry))
