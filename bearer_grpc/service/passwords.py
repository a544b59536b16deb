"""What a new password must be, after NIST SP 800-63B (revision 4, section 3.1.1.2).

- At least :data:`MIN_PASSWORD_LENGTH` characters (15): the password grant is a
  single-factor sign-in, for which the guideline requires 15. Characters are counted as
  Unicode code points; any printable character, space and Unicode are accepted; at most
  512 characters.
- Not a commonly used password: the password, ignoring case, must not be in the list of
  the 30,000 most common passwords that ships with the ``zxcvbn`` package (MIT licence;
  compiled by its authors from leaked password corpora). A maintained package, installed
  from PyPI like every other dependency, rather than a list copied into this repository.
  The same holds for the password with the digits and symbols around it taken away, or
  with one common password repeated (``password1234567!``, ``letmeinletmein``).
- Not repetitive or sequential (``aaaaaaaaaaaaaaa``, ``123456789012345``, ``abcd`` runs),
  and not derived from the context: the user's name or the service's name.
- No composition rules (no "one digit, one symbol"), and no expiry: the guideline
  forbids both.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Final

from bearer_grpc.core.errors import InvalidRequest
from bearer_grpc.core.secrets import MAX_SECRET_LENGTH

MIN_PASSWORD_LENGTH: Final = 15
"""Shortest password accepted for a new user (NIST SP 800-63B-4, single-factor)."""
_SERVICE_WORDS: Final = ("bearer-grpc", "bearergrpc", "bearer_grpc", "bearer grpc")
_AROUND = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.UNICODE | re.DOTALL)
_SEQUENCES: Final = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
)


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The common-password list (loaded once, on the first check)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # ~30,000 entries; the server extra

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, *, username: str) -> None:
    """Refuse a password a new user may not have (see the module docstring).

    Args:
        password: The proposed password.
        username: The user's name (a password derived from it is refused).

    Raises:
        InvalidRequest: Saying which rule the password breaks, never repeating it.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_SECRET_LENGTH:
        raise InvalidRequest(f"password must have at most {MAX_SECRET_LENGTH} characters")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in password):
        raise InvalidRequest("password must not contain control characters")
    lowered = password.casefold()
    if _is_common(lowered):
        raise InvalidRequest("password is too common: choose another")
    if _is_repetitive(lowered):
        raise InvalidRequest("password is repetitive or sequential: choose another")
    context = [word for word in (username.casefold(), *_SERVICE_WORDS) if len(word) >= 3]
    if any(word in lowered for word in context):
        raise InvalidRequest("password must not contain the user name or the service name")


def _is_common(lowered: str) -> bool:
    common = _common_passwords()
    match = _AROUND.match(lowered)
    core = match.group(1) if match else lowered
    candidates = {lowered, core}
    for size in range(1, len(core) // 2 + 1):  # one word repeated: letmeinletmein
        if len(core) % size == 0 and core[:size] * (len(core) // size) == core:
            candidates.add(core[:size])
            break
    return any(candidate in common for candidate in candidates)


def _is_repetitive(lowered: str) -> bool:
    if len(set(lowered)) <= 2:
        return True
    longest = 0
    for sequence in _SEQUENCES:
        for ordered in (sequence, sequence[::-1]):
            run = 1
            for previous, char in itertools.pairwise(lowered):
                run = run + 1 if f"{previous}{char}" in ordered else 1
                longest = max(longest, run)
    return longest >= len(lowered) // 2
