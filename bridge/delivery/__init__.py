"""Delivery: what happens between "a job is due" and "the patient answered".

- ``settings``: the ``delivery`` settings section (pacing, caps, unknown-job policy, prices,
  budget);
- ``tables`` / ``ledger``: the store's record of every send attempt (one row per attempt, with its
  opaque token, provider reference, cost and final status);
- ``policy``: redials and resends (pure);
- ``pacing``: per-channel spacing and provider rate-limit holds that survive restarts;
- ``settle``: ``unknown`` jobs settled by asking the provider or by policy, never resent blindly;
- ``replies`` (pure keyword parsing) and ``answers`` (an answer becomes write-back commands and
  opt-outs, and stops the other pending attempts of the appointment);
- ``webhooks``: provider callbacks on the bridge's web server, signature-checked;
- ``costs``: price per message and the monthly budget with its hard stop;
- ``sample``: ``bridge send-sample`` and ``bridge costs`` / ``bridge replies``.
"""
