"""Online booking, recalls and invitations.

- ``settings``: the ``booking`` and ``recall`` sections; ``interval``: calendar intervals;
- ``tables``: the store's booking tables; ``passes``: personal booking links;
- ``reasons``, ``availability`` (pure slot arithmetic) and ``offers``: what can be booked now;
- ``booking``: a booking request becomes a host write-back applied at once, then a
  confirmation; ``events``: the messages (confirmation, refusal, recall, invitation, link);
- ``recall``: the daily recall run and its statistics; ``invitations``: invite, revoke, expire;
- ``routes`` (the steps), ``page_base`` (their plumbing), ``pages`` and ``repeats``: the
  booking pages (entry point ``bridge.web``);
  ``cli``: commands; ``worker``: the background worker (entry point ``bridge.workers``).
"""
