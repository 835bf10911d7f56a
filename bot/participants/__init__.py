"""Participants: enrollment, consent (opt-out, opt-in, pause, resume), phone numbers."""
