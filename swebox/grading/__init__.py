"""Grading: test-log parsers and, later, resolved rules and the grader."""
