"""The ``batchbridge`` command: ``local up``, ``deploy``, ``destroy``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage = (
        "usage: batchbridge local up [--port 4566] [--executor process|simulate|docker]\n"
        "       batchbridge deploy --target local|aws [--region R] [--profile P] [--output json]\n"
        "       batchbridge destroy --target local|aws [--region R] [--profile P]"
    )
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "local":
        from services.cli import main as local_main

        return local_main(rest)
    if command in ("deploy", "destroy"):
        from scripts.deploy import main as deploy_main

        return deploy_main([command, *rest])
    print(f"batchbridge: unknown command {command!r}\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
