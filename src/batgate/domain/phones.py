"""Phone number checks for the send hot path.

``phonenumbers.parse`` is lenient (it strips spaces, punctuation, national prefixes
and extensions) and slow (~13 µs). A recipient is required to be written in E.164
already, so the country code can be cut off by hand and the ``PhoneNumber`` built
directly (~5 µs), and campaigns repeat numbers, so answers are cached.

Meaning: ``is_valid_e164(n)`` is true exactly when ``n`` is ``+`` and 8-15 digits and
``phonenumbers.parse(n)`` gives a valid number whose E.164 form is ``n`` itself. A
number that parses only after rewriting (``+44 07911 123456`` with its national
prefix ``0``, spaces, an extension) is not accepted: what the caller sent is what is
stored and sent on.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import phonenumbers

# Country calling codes are prefix-free (ITU-T E.164), so the first of the 1-, 2- or
# 3-digit prefixes that is a known code is the code.
_COUNTRY_CODES: Final = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_E164_FORM: Final = re.compile(r"\+[1-9][0-9]{7,14}")

# phonenumbers compiles its metadata patterns through the re module's cache (512
# entries), which numbers from many countries overflow: every check then recompiles
# its patterns (~290 µs instead of ~5 µs per number, measured over one number per
# region). Newer releases can keep them instead; the switch is idempotent and bounded
# by the size of the metadata.
_enable_pattern_cache = getattr(phonenumbers, "enable_pattern_cache", None)
if callable(_enable_pattern_cache):
    _enable_pattern_cache()

PHONE_CACHE_SIZE: Final = 65_536


def is_e164_form(number: str) -> bool:
    """`+` and 8-15 ASCII digits, the first not 0; no check against numbering plans."""
    return _E164_FORM.fullmatch(number) is not None


@functools.lru_cache(maxsize=PHONE_CACHE_SIZE)
def is_valid_e164(number: str) -> bool:
    """True when ``number`` is a valid phone number written in canonical E.164."""
    if _E164_FORM.fullmatch(number) is None:
        return False
    for cc_length in (1, 2, 3):
        country_code = int(number[1 : 1 + cc_length])
        if country_code in _COUNTRY_CODES:
            break
    else:
        return False
    return phonenumbers.is_valid_number(_phone_number(country_code, number[1 + cc_length :]))


def _phone_number(country_code: int, national: str) -> phonenumbers.PhoneNumber:
    # Leading zeros of the national significant number (Italy, some others) are
    # carried as flags, the way phonenumbers.parse records them.
    zeros = len(national) - len(national.lstrip("0"))
    zeros = min(zeros, len(national) - 1)
    if zeros == 0:
        return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    return phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=int(national),
        italian_leading_zero=True,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
