"""initialize_stethoscope_db INI: bring the database schema to the latest revision."""

import argparse
import sys

from stethoscope.migrations import upgrade


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    args = parser.parse_args(argv)
    revision = upgrade(args.config_uri)
    print(f"database at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
