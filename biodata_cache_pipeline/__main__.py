"""`biodata-cache-pipeline` and `python -m biodata_cache_pipeline`: runs `cli.main`.

The CLI is imported only when the command runs. The snapshot refresh's worker processes are
spawned, and a spawned process imports its parent's main module first: started from here, a
worker imports this module alone, not Dagster and everything the CLI needs.

When the command is done, every object left is frozen (`gc.freeze`): the interpreter's last
garbage collections at exit would otherwise walk everything Dagster and the CLI made, about
0.9 s of every command (benchmarks/README.md, session 10). Exit handlers still run.
"""

import gc
import sys


def main() -> int:
    from biodata_cache_pipeline.cli import main as run_cli

    code = run_cli()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
