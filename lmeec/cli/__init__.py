"""The command line: one module per verb (`checkpoint`, `export`, `build`, `run`, `check`, `bench`, `demo`,
`data`, `eval`) plus the entry point `main`. Each verb module parses arguments and calls the library.

May import every other lmeec package; nothing in the library imports `lmeec.cli`.
"""

from lmeec.cli.main import main

__all__ = ["main"]
