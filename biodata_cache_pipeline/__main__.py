"""`biodata-cache-pipeline` and `python -m biodata_cache_pipeline`: runs `cli.main`.

The CLI is imported only when the command runs. The snapshot refresh's worker processes are
spawned, and a spawned process imports its parent's main module first: started from here, a
worker imports this module alone, not Dagster and everything the CLI needs.
"""

import sys


def main() -> int:
    from biodata_cache_pipeline.cli import main as run_cli

    return run_cli()


if __name__ == "__main__":
    sys.exit(main())
