#!/usr/bin/env python3
"""``make bench``: the benchmarks of bench/ on a database with crm_lifecycle.

The database ``crm_lifecycle_bench`` is created with the module the first
time (without demo data) and updated afterwards; the benchmarks roll back
what they create. ``scale.py`` builds (once) and keeps its own database of
50,000 clients (``SCALE_CLIENTS`` sets another number). They print ratios.
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

DATABASE = bootstrap.database_name("crm_lifecycle_bench")
# modules of bench/ that other benchmarks import, not benchmarks themselves
LIBRARIES = {"scale_data.py"}


def main():
    try:
        prepared = bootstrap.bootstrap()
    except bootstrap.BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    env = {**bootstrap.prepared_pg_env(prepared), **prepared}
    odoo = [prepared["PYTHON"], prepared["ODOO_BIN"], "--config", prepared["ODOO_RC"]]
    print(f"[bench] preparing {DATABASE}", flush=True)
    subprocess.run(
        [
            *odoo,
            "--database",
            DATABASE,
            "--init",
            "crm_lifecycle",
            *bootstrap.demo_options(False),
            "--stop-after-init",
            "--http-port",
            str(bootstrap._free_port()),
            "--max-cron-threads",
            "0",
            "--log-level",
            "warn",
        ],
        env=env,
        check=True,
    )
    status = 0
    for script in sorted((bootstrap.REPO_ROOT / "bench").glob("*.py")):
        if script.name in LIBRARIES:
            continue
        # scale.py builds and keeps its own database (50,000 clients)
        options = (
            [
                "--clients",
                os.environ.get("SCALE_CLIENTS", "50000"),
                "--database",
                bootstrap.database_name("crm_lifecycle_scale"),
            ]
            if script.name == "scale.py"
            else ["--database", DATABASE]
        )
        print(f"[bench] {script.name}", flush=True)
        result = subprocess.run(
            [
                prepared["PYTHON"],
                str(script),
                "--config",
                prepared["ODOO_RC"],
                *options,
            ],
            env=env,
        )
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
