"""The service layer: what the API asks of the product, one function per request.

A route parses the request, calls one function here and shapes the answer. Commands
(confirm, correct, cancel, notice and attendance on a visit; acknowledgements of alerts
and fridge alarms; an operator's alert routing) read, decide and write inside one
transaction (:func:`ingest.services.common.unit_of_work`); the storage functions they call
take that transaction's connection and never open their own. Refusals are the exceptions
of :mod:`ingest.services.common`, which the API maps to HTTP statuses in one place.
"""
