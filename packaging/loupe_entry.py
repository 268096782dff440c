"""The bundle's entry script (PyInstaller needs a file): the ``loupe`` console entry point."""

import sys

from desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
