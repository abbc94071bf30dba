"""Signals that cross app boundaries.

`student_data_changed` is sent (after the transaction commits) whenever raw
records of students change: an import job, an admin edit, the demo loader.
Receivers recompute what depends on those records (weekly features, cached
predictions). Keyword arguments:

- ``student_ids``: list of Student primary keys whose records changed
- ``since`` / ``until``: the dates the changed records cover (``None`` = unknown)
- ``kinds``: the record kinds that changed ("attendance", "grades", ...)
- ``source``: a short label of who sent it, for logs ("import:42", "demo")
"""

from django.dispatch import Signal

student_data_changed = Signal()
