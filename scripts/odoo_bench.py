#!/usr/bin/env python3
"""``make bench``: the benchmarks of bench/ on a database with crm_lifecycle.

The database ``crm_lifecycle_bench`` is created with the module the first
time (without demo data) and updated afterwards; the benchmarks roll back
what they create. They print ratios.
"""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

DATABASE = "crm_lifecycle_bench"


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
            "--without-demo",
            "all",
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
        print(f"[bench] {script.name}", flush=True)
        result = subprocess.run(
            [
                prepared["PYTHON"],
                str(script),
                "--config",
                prepared["ODOO_RC"],
                "--database",
                DATABASE,
            ],
            env=env,
        )
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
