import sys

from synthrun.cli import main

sys.exit(main())
