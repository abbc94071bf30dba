"""Helpers for the OULAD benchmark: loading the tables and mapping them to EduPulse arrays."""
