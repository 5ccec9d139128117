"""The runtime server: swebox's sandboxes over HTTP (FastAPI + uvicorn; asyncio lives here,
the library stays threaded). `keys.py` holds the API keys, `app.py` the routes."""
