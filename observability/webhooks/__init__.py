"""Organisation webhooks: the portal POSTs signed JSON about an organisation's clusters to
the URLs it registered.

Observability knows no cluster: the caller (provisioning) hands over the organisation, the
event type, its data and the subject the event is about (the cluster's uuid), in the
transaction that decided it (outbox.emit). Deliveries are rows first (a transactional
outbox), sent after commit by a task and again by beat when due (delivery.py), signed
(signing.py), only to public addresses (destinations.py), in order per subject.
"""
