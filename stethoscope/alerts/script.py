"""stethoscope-alerts INI check [--site SITE]: evaluate the alerts now.

For cron or a systemd timer, so that alerts open (and the webhook is told)
even when nobody is reading them. Each site is evaluated in one
transaction; servers evaluating at the same moment wait for it, and open
nothing twice. Prints, per site, the alerts opened and those open.
"""

import sys

from ..notify import WEBHOOK_TIMEOUT_SECONDS
from ..scripts._console import argument_parser, run
from ..singletons import ALERTS_EVALUATOR

PROG = "stethoscope-alerts"


def check(request, args) -> None:
    evaluator = request.registry[ALERTS_EVALUATOR]
    sites = [args.site] if args.site else evaluator.site_ids()
    for site_id in sites:
        opened = evaluator.evaluate(site_id)
        for alert in opened:
            print(f"{site_id}: opened {alert.kind} {alert.subject}")
        print(f"{site_id}: {len(opened)} opened")
    # The webhook posts from threads of their own: let them finish.
    evaluator.notifier.wait(WEBHOOK_TIMEOUT_SECONDS * 2)


def main(argv=None) -> int:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", metavar="INI", help="the server's ini file")
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="evaluate every site's alerts now")
    checking.add_argument("--site", help="only this site")
    args = parser.parse_args(argv)
    return run(args.config_uri, check, args, write=False)


if __name__ == "__main__":
    sys.exit(main())
