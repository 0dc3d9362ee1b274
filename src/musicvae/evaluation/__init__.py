"""Evaluation of trained models: groove metrics (``metrics``) and split-level reports
(``evaluate``)."""
