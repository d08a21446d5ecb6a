"""``python -m graphc ...`` runs the ``graphc`` command."""

from graphc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
