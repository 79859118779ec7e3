"""SmartStudy: a self-hostable study platform built around a learner-modelling engine."""

__version__ = "0.1.0"
