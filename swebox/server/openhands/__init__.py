"""OpenHands compatibility on plain images: the V0 remote-runtime control API and action-execution
API, and the V1 agent-server (docs/server.md)."""

from __future__ import annotations

from fastapi import FastAPI

from swebox.server.state import Server


def mount(app: FastAPI, server: Server) -> None:
    """Add OpenHands' routes to the server's app."""
