import sys

from airflow_platform_dagtool.cli import main

sys.exit(main())
