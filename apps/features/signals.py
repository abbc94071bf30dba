"""`features_updated`: sent after a refresh has committed new weekly features.

Keyword arguments: ``student_ids`` (the students whose weeks were recomputed),
``since`` / ``until`` (ISO dates or None) and ``source``. Scoring listens to
re-score those students.
"""

from django.dispatch import Signal

features_updated = Signal()
