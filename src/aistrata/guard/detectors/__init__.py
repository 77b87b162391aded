"""Detectors by check name. `make_check(name, options)` builds one from a policy's options.

Text checks (`scan(text, env)`) run on every scanned message part or on the answer;
request checks (`inspect(request)`) judge the request as a whole and run on input only.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from . import answers, content, national_ids, pii, requests
from .injection import InjectionCheck
from .secrets import SecretsCheck

Options = Mapping[str, Any]


def _names(o: Options) -> Any:
    from .names import NamesCheck  # Presidio and spaCy load only when a policy asks for names

    return NamesCheck(o.get("entities"), float(o.get("min_score", 0.6)))


TEXT_CHECKS: dict[str, Callable[[Options], Any]] = {
    "email": lambda o: pii.email(),
    "phone": lambda o: pii.PhoneCheck(o.get("regions")),
    "credit_card": lambda o: pii.credit_card(),
    "iban": lambda o: pii.iban(),
    "national_id": lambda o: national_ids.national_id(),
    "ip": lambda o: pii.IpCheck(),
    "names": _names,
    "secrets": lambda o: SecretsCheck(entropy_tokens=bool(o.get("entropy", True))),
    "injection": lambda o: InjectionCheck(float(o.get("threshold", 0.5)), o.get("classifier"), bool(o.get("rules", True))),
    "words": content.words,
    "topics": content.topics,
    "categories": content.categories,
    "offensive": lambda o: content.OffensiveCheck(float(o.get("offensive_threshold", o.get("threshold", 0.8)))),
    "leakage": lambda o: answers.LeakageCheck(bool(o.get("canary", True)), int(o.get("min_chars", 80))),
    "json_schema": lambda o: answers.JsonSchemaCheck(),
    "grounded": lambda o: answers.GroundedCheck(float(o.get("grounded_threshold", o.get("threshold", 0.5)))),
}
REQUEST_CHECKS: dict[str, Callable[[Options], Any]] = {
    "size": requests.SizeCheck,
    "schema": requests.SchemaCheck,
}
# Shorthands: `pii` is every pattern-based PII check (names need a model, so they are opt-in).
GROUPS = {"pii": ["email", "phone", "credit_card", "iban", "national_id", "ip"]}
OUTPUT_ONLY = {"leakage", "json_schema", "grounded"}


def make_check(name: str, options: Options) -> Any:
    factory = TEXT_CHECKS.get(name) or REQUEST_CHECKS.get(name)
    if factory is None:
        known = sorted([*TEXT_CHECKS, *REQUEST_CHECKS, *GROUPS])
        raise ValueError(f"unknown check {name!r} (known: {', '.join(known)})")
    return factory(options)
