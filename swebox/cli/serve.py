"""`swebox serve` (the runtime server) and `swebox serve keys add|list|remove`."""

from __future__ import annotations

from pathlib import Path

import typer

from swebox.cli import err_console, out_console
from swebox.cli.evaluate import BACKEND

app = typer.Typer(help="Serve sandboxes over HTTP (docs/server.md).", invoke_without_command=True,
                  no_args_is_help=False)
keys_app = typer.Typer(help="API keys of the server: stored hashed, shown once.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")
KEYS = typer.Option(None, "--keys", help="Key file (default: "
                    "$SWEBOX_STATE_DIR/server-keys.json).")


@app.callback()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8477, "--port"),
    backend: str = BACKEND,
    max_sandboxes: int = typer.Option(64, "--max-sandboxes", min=1, help="Sandboxes at once, "
                                      "all keys together; past it, 429 with Retry-After."),
    max_per_key: int = typer.Option(32, "--max-per-key", min=1),
    keys: Path = KEYS,
    name: str = typer.Option("default", "--name", help="This server's name: its sandboxes "
                             "carry it, and a restart collects what a killed run of it left."),
    max_upload: str = typer.Option("4g", "--max-upload", help="Largest upload; past it, 413."),
    disable_auth: bool = typer.Option(False, "--disable-auth", help="No API key needed "
                                      "(refused off loopback unless forced)."),
    force_disable_auth: bool = typer.Option(False, "--force-disable-auth", help="Allow "
                                            "--disable-auth on a non-loopback address."),
) -> None:
    """Run the server until Ctrl-C; its sandboxes close with it."""
    if ctx.invoked_subcommand is not None:
        return
    from swebox.errors import BadInput

    try:
        import uvicorn
    except ImportError as e:
        raise BadInput("the server needs FastAPI, uvicorn and prometheus-client",
                       hint="pip install 'swebox[server]'") from e
    from swebox.server.app import Server, check_auth_choice, create_app
    from swebox.server.keys import KeyStore

    check_auth_choice(host, disable_auth or force_disable_auth, force_disable_auth)
    store = None if (disable_auth or force_disable_auth) else KeyStore(keys)
    if store is not None and not store.names():
        raise BadInput(f"no API keys in {store.path}",
                       hint="create one with `swebox serve keys add NAME`")
    from swebox.sandbox.models import parse_size

    try:
        upload_limit = parse_size(max_upload)
    except ValueError as e:
        raise BadInput(f"--max-upload: {e}") from e
    server = Server(store, backend=backend, max_sandboxes=max_sandboxes,
                    max_per_key=max_per_key, name=name)
    server.max_upload = upload_limit
    import os

    # A server keeps the OpenHands V1 zygote loaded from the start, so no V1 start waits for
    # it (docs/openhands-v1.md); $SWEBOX_OPENHANDS_V1_ZYGOTE=1 waits for the first, 0 never.
    if not os.environ.get("SWEBOX_OPENHANDS_V1_ZYGOTE"):
        server.openhands_v1_zygote = "eager"  # type: ignore[attr-defined]
    # Bound here, not by uvicorn: a port in use is then one line that says so, before
    # anything claims to be serving.
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port}: {e.strerror or e}",
                       hint="pick another --port, or stop what holds this one") from e
    err_console.print(f"serving {backend} sandboxes on http://{host}:{port} "
                      f"({'no auth' if store is None else f'{len(store.names())} key(s)'})")
    uv = uvicorn.Server(uvicorn.Config(create_app(server), log_level="warning"))
    uv.run(sockets=[sock])


@keys_app.command("add")
def keys_add(name: str = typer.Argument(...), keys: Path = KEYS) -> None:
    """Create a key; it is printed once, on stdout."""
    from swebox.server.keys import KeyStore

    key = KeyStore(keys).add(name)
    print(key)
    err_console.print(f"key {name!r} created; it is not stored in the clear and will not be "
                      "shown again")


@keys_app.command("list")
def keys_list(keys: Path = KEYS) -> None:
    from swebox.server.keys import KeyStore

    for name in KeyStore(keys).names():
        out_console.print(name)


@keys_app.command("remove")
def keys_remove(name: str = typer.Argument(...), keys: Path = KEYS) -> None:
    from swebox.server.keys import KeyStore

    KeyStore(keys).remove(name)
    err_console.print(f"key {name!r} removed")
