"""What a patient's SMS reply means. Pure: text in, ``Intent`` out.

Tolerant the way patients type: case, spaces, punctuation and emoji around the word do not
matter ("  yes!! 👍", "Ok.", "c", "1"). A confirm or cancel word may lead a short sentence
("Yes, see you then") as long as the rest does not contradict it ("yes... no wait" goes to staff).
Opt-out, opt-in and help keywords must be the whole message, as carriers require (STOP in the
middle of a sentence is not an opt-out; staff read it).

- confirm: C, Y, YES, 1, OK, OKAY, CONFIRM, CONFIRMED, SI, OUI, JA (and 👍 ✅ alone)
- cancel: N, NO, X, 2, CANCEL, CANCELLED (and 👎 ❌ alone); CANCEL is an opt-out instead where
  the provider treats it so (Twilio), see ``parse(..., opt_out_words=...)``
- call back: 3, CALL, CALLBACK, "CALL ME"
- opt out: STOP, STOPALL, UNSUBSCRIBE, END, QUIT (and the provider's own list)
- opt in: START, UNSTOP
- help: HELP, INFO
- anything else: staff
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from enum import StrEnum


class Intent(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"
    CALLBACK = "callback"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    STAFF = "staff"


CONFIRM_WORDS = frozenset(
    {"C", "Y", "YES", "1", "OK", "OKAY", "CONFIRM", "CONFIRMED", "SI", "OUI", "JA"}
)
CANCEL_WORDS = frozenset({"N", "NO", "X", "2", "CANCEL", "CANCELLED", "CANCELED"})
CALLBACK_WORDS = frozenset({"3", "CALL", "CALLBACK", "CALL ME", "CALL ME BACK"})
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CONFIRM_EMOJI = frozenset({"\U0001f44d", "\u2705", "\u2714"})
CANCEL_EMOJI = frozenset({"\U0001f44e", "\u274c", "\u2716"})
# A short sentence may follow a confirm or cancel word; a long one is for staff to read.
MAX_LEADING_WORDS = 6

_WORD = re.compile(r"[A-Z0-9]+")


def normalize(text: str) -> str:
    """Upper-case words separated by single spaces: accents kept, everything else dropped."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return " ".join(_WORD.findall(_strip_accents(folded)))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def parse(text: str, opt_out_words: Collection[str] = OPT_OUT_WORDS) -> Intent:
    """The intent of one reply. ``opt_out_words`` is the provider's opt-out list (Twilio adds
    CANCEL, REVOKE, OPTOUT): a word in it is an opt-out even where it would mean cancel."""
    words = normalize(text)
    if not words:
        return _emoji_intent(text)
    opt_out = frozenset(opt_out_words) | OPT_OUT_WORDS
    if words in opt_out:
        return Intent.OPT_OUT
    if words in OPT_IN_WORDS:
        return Intent.OPT_IN
    if words in HELP_WORDS:
        return Intent.HELP
    if words in CALLBACK_WORDS:
        return Intent.CALLBACK
    first, *rest = words.split(" ")
    if len(rest) >= MAX_LEADING_WORDS:
        return Intent.STAFF
    rest_words = set(rest)
    if first in CONFIRM_WORDS and not rest_words & (CANCEL_WORDS | opt_out):
        return Intent.CONFIRM
    if first in CANCEL_WORDS and not rest_words & (CONFIRM_WORDS | opt_out):
        return Intent.CANCEL
    return Intent.STAFF


def _emoji_intent(text: str) -> Intent:
    marks = {ch for ch in text if not ch.isspace() and ch not in "\ufe0f\u200d"}
    marks = {ch for ch in marks if not ("\U0001f3fb" <= ch <= "\U0001f3ff")}  # skin tones
    if marks and marks <= CONFIRM_EMOJI:
        return Intent.CONFIRM
    if marks and marks <= CANCEL_EMOJI:
        return Intent.CANCEL
    return Intent.STAFF
