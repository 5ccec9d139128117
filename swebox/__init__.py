"""swebox: sandboxes, datasets, grading and rollouts for software-engineering agents."""

__version__ = "0.1.0"
