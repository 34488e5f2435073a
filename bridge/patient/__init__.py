"""The patient's side of the bridge: confirm / cancel / call-me-back pages reached from a link.

- ``tokens``: signed, single-purpose link tokens (no patient data in them); ``secret``: the key.
- ``linkstore``: one row per link (what it is for, when it expires, attempts, the session).
- ``links``: the link maker the dispatcher calls for each message (entry point ``bridge.links``).
- ``routes``: the pages (entry point ``bridge.web``); ``flow`` the steps behind them; ``answer``
  turns an answer into a write-back command applied at once; ``guard`` holds CSRF, rate limits
  and security headers; ``views`` renders the Jinja2 pages in the patient's language.
"""
