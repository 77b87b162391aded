"""Contact and payment PII: emails, phone numbers, payment cards, IBANs and IP addresses.

Each is a candidate regex followed by a real validator, so a random 16-digit number is not
a card (Luhn and issuer prefix) and a random `XX00...` is not an IBAN (mod-97 and the
country's length, through python-stdnum).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable

import phonenumbers
from stdnum import iban as stdnum_iban

from .base import PatternCheck, SpanCheck, digits

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                   r"[A-Za-z]{2,24}(?![\w-])")
CARD = re.compile(r"(?<![\d-])(\d(?:[ -]?\d){12,18})(?![\d-])")
IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30})\b")
IPV4 = re.compile(r"(?<![\d.])((?:\d{1,3}\.){3}\d{1,3})(?!\.?\d)")  # a full stop may end the sentence
IPV6 = re.compile(r"(?<![\w:])((?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?)(?![\w:])")

# Issuer prefixes: 3 (Amex, JCB, Diners), 4 (Visa), 5 (Mastercard, Maestro), 6 (Discover,
# UnionPay, Maestro) and Mastercard's 2221-2720. A Luhn-valid number outside them is an id.
_IIN = re.compile(r"^(?:[3-6]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))")


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_ok(candidate: str) -> bool:
    number = digits(candidate)
    return 13 <= len(number) <= 19 and bool(_IIN.match(number)) and luhn_ok(number)


def ipv4_ok(candidate: str) -> bool:
    try:
        addr = ipaddress.IPv4Address(candidate)
    except ValueError:
        return False
    return not (addr.is_unspecified or str(addr).startswith("0."))  # version-like 0.1.2.3


def ipv6_ok(candidate: str) -> bool:
    if candidate.count(":") < 2 or len(candidate) < 6:
        return False  # "::" or times like 12:30:45 (which also fail to parse) are not addresses
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


class PhoneCheck(SpanCheck):
    """Google's libphonenumber: numbers valid for their region (or any, with a `+` prefix)."""

    name, label = "phone", "PHONE"

    def __init__(self, regions: list[str] | None = None) -> None:
        self.regions = [r.upper() for r in (regions or ["US", "GB"])]

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        seen: set[tuple[int, int]] = set()
        for region in self.regions:
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                if (m.start, m.end) not in seen:
                    seen.add((m.start, m.end))
                    yield m.start, m.end


class IpCheck(SpanCheck):
    name, label = "ip", "IP_ADDRESS"

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        for pattern, ok in ((IPV4, ipv4_ok), (IPV6, ipv6_ok)):
            for m in pattern.finditer(text):
                if ok(m.group(1)):
                    yield m.span(1)


def email() -> SpanCheck:
    return PatternCheck("email", "EMAIL", EMAIL)


def credit_card() -> SpanCheck:
    return PatternCheck("credit_card", "CREDIT_CARD", CARD, card_ok)


def iban() -> SpanCheck:
    return PatternCheck("iban", "IBAN", IBAN, lambda s: stdnum_iban.is_valid(s.replace(" ", "")))
