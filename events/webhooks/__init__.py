"""Webhooks: a user's events POSTed to the URLs they register, signed as Standard Webhooks says.

* `subscriptions` — which event types an endpoint may ask for, and which it receives.
* `addresses` — which URLs may be called: https, and hosts whose every address is public, checked when an
  endpoint is registered and again, after resolving the name, at every delivery (which then connects to the
  address it checked).
* `signing` — the secrets and the `webhook-*` headers.
* `services` / `selectors` — the endpoints' writes and reads, for the API and the admin.
* `dispatch` — turns the outbox's new events into one delivery per (event, endpoint).
* `delivery` — claims due deliveries, POSTs them with no database transaction open, records each attempt and
  schedules the retries; `manage.py deliver_webhooks` runs both in a loop, on as many machines as needed.
* `transport` — the HTTP exchange, ended by one deadline whatever the receiver does.
"""
