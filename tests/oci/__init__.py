"""Tests of the daemonless image reader and layer extraction (swebox.oci)."""
