"""National identifiers with check digits, validated by python-stdnum.

Only formats with a checksum or strict structural rules are matched, so ordinary numbers
are not masked: US SSN (area/group/serial rules, written with separators), UK NHS number
(mod 11), Spanish DNI/NIF and NIE (check letter), Italian codice fiscale (check letter),
Polish PESEL (weighted checksum), Indian Aadhaar (Verhoeff), Finnish HETU, Swedish
personnummer and Dutch BSN written with its separators (11-proof).
"""

from __future__ import annotations

from stdnum import fi, nl, se
from stdnum.es import nie, nif
from stdnum.gb import nhs
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.pl import pesel
from stdnum.us import ssn

from .base import AnyOf, PatternCheck

# (label, candidate pattern, validator). Digit runs are bounded by non-digits on both sides.
_FORMATS = [
    ("US_SSN", r"(?<![\d-])(\d{3}[- ]\d{2}[- ]\d{4})(?![\d-])", ssn.is_valid),
    ("UK_NHS", r"(?<![\d-])(\d{3}[- ]?\d{3}[- ]?\d{4})(?![\d-])", nhs.is_valid),
    ("ES_NIF", r"\b(\d{8}-?[A-Za-z])\b", nif.is_valid),
    ("ES_NIE", r"\b([XYZxyz]-?\d{7}-?[A-Za-z])\b", nie.is_valid),
    ("IT_FISCAL_CODE", r"\b([A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z]"
                       r"[0-9LMNPQRSTUVlmnpqrstuv]{3}[A-Za-z])\b", codicefiscale.is_valid),
    ("PL_PESEL", r"(?<!\d)(\d{11})(?!\d)", pesel.is_valid),
    ("IN_AADHAAR", r"(?<![\d-])([2-9]\d{3}[- ]?\d{4}[- ]?\d{4})(?![\d-])", aadhaar.is_valid),
    ("FI_HETU", r"\b(\d{6}[-+A]\d{3}[0-9A-Za-z])\b", fi.hetu.is_valid),
    ("SE_PERSONNUMMER", r"(?<!\d)(\d{6}[-+]\d{4})(?!\d)", se.personnummer.is_valid),
    ("NL_BSN", r"(?<![\d.])(\d{4}\.\d{2}\.\d{3})(?![\d.])", nl.bsn.is_valid),
]


def national_id() -> AnyOf:
    return AnyOf("national_id", [PatternCheck("national_id", label, pattern, valid) for label, pattern, valid in _FORMATS])
