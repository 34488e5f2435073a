"""The bridge's web server: status, health and (later) patient pages and provider webhooks."""
