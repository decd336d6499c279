import sys

from core.cli.main import main

if __name__ == "__main__":  # multiprocessing's spawned workers import this module too
    sys.exit(main())
