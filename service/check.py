"""Check the start-up inputs and exit: `python -m service.check` (scripts/serve runs it first).

Reads the LEGTRIAGE_* settings and builds the app once, the way gunicorn will, so that a bad value
(a setting, the mappings folder, the default rule version) is reported as one line naming it, with
exit status 2, before gunicorn prints anything of its own.
"""
from __future__ import annotations

import sys


def main() -> int:
    from service import create_app
    from service.catalog import CatalogError
    from service.config import ConfigError

    try:
        create_app()
    except (ConfigError, CatalogError) as err:
        print(f"legtriage: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
