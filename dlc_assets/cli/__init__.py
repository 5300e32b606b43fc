"""The ``dlc-platform`` command line, one module per command group (main.py assembles them).

Command modules import the library (``dlc_tracking``) and the definitions; nothing outside
this package imports them.
"""
