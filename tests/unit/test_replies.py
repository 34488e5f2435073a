"""Every reply keyword, the ways patients type them, and free text for staff."""

from __future__ import annotations

import pytest

from bridge.delivery.replies import Intent, normalize, parse
from plugins.channels.twilio_sms import TwilioSms
from plugins.channels.vonage_sms import VonageSms

CASES = [
    # confirm
    ("C", Intent.CONFIRM),
    ("c", Intent.CONFIRM),
    ("Y", Intent.CONFIRM),
    ("yes", Intent.CONFIRM),
    ("  YES!!! ", Intent.CONFIRM),
    ("Yes 👍", Intent.CONFIRM),
    ("1", Intent.CONFIRM),
    ("1.", Intent.CONFIRM),
    ("ok", Intent.CONFIRM),
    ("Ok, thanks", Intent.CONFIRM),
    ("okay", Intent.CONFIRM),
    ("Confirm", Intent.CONFIRM),
    ("confirmed.", Intent.CONFIRM),
    ("Sì", Intent.CONFIRM),
    ("oui", Intent.CONFIRM),
    ("👍", Intent.CONFIRM),
    ("👍🏽", Intent.CONFIRM),
    ("✅", Intent.CONFIRM),
    ("yes, see you then", Intent.CONFIRM),
    # cancel
    ("N", Intent.CANCEL),
    ("no", Intent.CANCEL),
    ("No.", Intent.CANCEL),
    ("X", Intent.CANCEL),
    ("x", Intent.CANCEL),
    ("2", Intent.CANCEL),
    ("CANCEL", Intent.CANCEL),
    ("cancel please", Intent.CANCEL),
    ("❌", Intent.CANCEL),
    ("👎", Intent.CANCEL),
    # call back
    ("3", Intent.CALLBACK),
    ("call me", Intent.CALLBACK),
    ("Call me back!", Intent.CALLBACK),
    # opt out: the whole message only
    ("STOP", Intent.OPT_OUT),
    ("stop", Intent.OPT_OUT),
    (" Stop. ", Intent.OPT_OUT),
    ("STOPALL", Intent.OPT_OUT),
    ("unsubscribe", Intent.OPT_OUT),
    ("End", Intent.OPT_OUT),
    ("QUIT", Intent.OPT_OUT),
    ("stop 🛑", Intent.OPT_OUT),
    # opt in
    ("START", Intent.OPT_IN),
    ("unstop", Intent.OPT_IN),
    # help
    ("HELP", Intent.HELP),
    ("help?", Intent.HELP),
    ("info", Intent.HELP),
    # for staff
    ("", Intent.STAFF),
    ("🙂", Intent.STAFF),
    ("Can I come at 10 instead?", Intent.STAFF),
    ("yes... no wait", Intent.STAFF),
    ("no, yes", Intent.STAFF),
    ("please stop calling my mother", Intent.STAFF),
    ("yes I will be there but I may be a few minutes late because of the bus", Intent.STAFF),
    ("maybe", Intent.STAFF),
]


@pytest.mark.parametrize(("text", "intent"), CASES)
def test_keywords(text: str, intent: Intent) -> None:
    assert parse(text) == intent


def test_cancel_is_an_opt_out_where_the_provider_treats_it_so() -> None:
    assert parse("CANCEL", TwilioSms.opt_out_keywords) == Intent.OPT_OUT
    assert parse("cancel.", TwilioSms.opt_out_keywords) == Intent.OPT_OUT
    assert parse("revoke", TwilioSms.opt_out_keywords) == Intent.OPT_OUT
    assert parse("CANCEL", VonageSms.opt_out_keywords) == Intent.CANCEL
    # Inside a sentence CANCEL is not the carrier keyword: it stays a cancellation.
    assert parse("cancel please", TwilioSms.opt_out_keywords) == Intent.CANCEL


def test_normalize() -> None:
    assert normalize("  Sì,   grazie!! 😀 ") == "SI GRAZIE"
    assert normalize("…") == ""
