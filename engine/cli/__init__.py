"""The ``loupe`` command line and the demo it runs."""
