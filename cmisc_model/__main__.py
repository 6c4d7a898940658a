import sys

from cmisc_model.cli import main

sys.exit(main())
