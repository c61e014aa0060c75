"""What the programme's yearly follow-up counts: consultations by patient profile, the kind
of day (general practice or a speciality), who was on board, and continuity of care.

Counts only: no patient's identity and no health data beyond anonymous aggregate counts.
``consultations`` holds the pure rules (no storage, web, broker or clock); ``storage`` the
months imported from before the system.
"""
