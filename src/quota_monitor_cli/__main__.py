import sys

from quota_monitor_cli.main import main

sys.exit(main())
