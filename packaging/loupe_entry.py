"""The bundle's entry script (PyInstaller needs a file): the ``loupe`` console entry point."""

from desktop.launcher import run

if __name__ == "__main__":
    run()
