"""``rnnbench dashboard``: serve the Streamlit dashboard and print its URL."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from rnnbench.cli.common import app, err, fail


@app.command()
def dashboard(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Results files or directories (default: results/).", show_default=False)] = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
) -> None:
    """Serve the results dashboard (Streamlit) and print its URL on stdout; Ctrl-C stops it."""
    import os
    import signal
    import socket
    import subprocess
    import urllib.request

    import dashboard as dashboard_package
    from dashboard.data import RESULTS_ENV

    paths = paths or [Path("results")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or directory: {', '.join(missing)}")
    if not 1 <= port <= 65535:
        raise fail(f"--port must be between 1 and 65535, got {port}")
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    package_dir = Path(dashboard_package.__file__).resolve().parent
    python_path = [str(package_dir.parent), os.environ.get("PYTHONPATH")]  # `import dashboard` works
    env = {**os.environ, RESULTS_ENV: os.pathsep.join(str(p.resolve()) for p in paths),
           "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    command = [sys.executable, "-m", "dashboard.serve", "run", str(package_dir / "app.py"),
               "--server.port", str(port), "--server.address", host, "--server.headless", "true",
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer"]
    url = f"http://{host}:{port}/"
    server = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server too (finally below)
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        if server.poll() is not None:
            raise fail(f"the dashboard server exited with status {server.returncode} (see above)", 1)
        print(url, flush=True)
        err.print(f"dashboard on {url} (Ctrl-C stops it)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
