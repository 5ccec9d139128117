"""Evaluation: predictions graded at scale (`swebox eval`) and datasets validated
(`swebox validate`)."""
