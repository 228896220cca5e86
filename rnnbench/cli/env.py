"""``rnnbench env``: the environment recorded with every run, as JSON."""

from __future__ import annotations

import json

from rnnbench import env
from rnnbench.cli.common import app


@app.command("env")
def env_command() -> None:
    """Print, as JSON, the environment recorded with every run."""
    print(json.dumps(env.collect(), indent=2, default=str))
