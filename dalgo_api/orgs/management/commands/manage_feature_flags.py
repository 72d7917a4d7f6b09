"""``manage.py manage_feature_flags``: the seed's options.

--enable-all-global                 every known flag on, globally
--enable FLAG [--org-slug SLUG]     one flag on, globally or for one organization
--disable FLAG [--org-slug SLUG]    one flag off, globally or for one organization
--list [--org-slug SLUG]            the effective values
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dalgo_api.orgs.flags import FEATURE_FLAGS, UnknownFlag, flags_for, set_flag
from dalgo_api.orgs.models import Org


class Command(BaseCommand):
    help = "Enable or disable feature flags, globally or per organization"

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--enable-all-global", action="store_true")
        action.add_argument("--enable", metavar="FLAG")
        action.add_argument("--disable", metavar="FLAG")
        action.add_argument("--list", action="store_true")
        parser.add_argument("--org-slug")

    def handle(self, *args, **options) -> None:
        org = None
        if options["org_slug"]:
            org = Org.objects.filter(slug=options["org_slug"]).first()
            if org is None:
                raise CommandError(f"organization '{options['org_slug']}' does not exist")
        scope = f"organization {org.slug}" if org else "global"
        try:
            if options["enable_all_global"]:
                if org is not None:
                    raise CommandError("--enable-all-global sets global flags: drop --org-slug")
                for name in FEATURE_FLAGS:
                    set_flag(name, True)
                self.stdout.write(f"enabled globally: {', '.join(FEATURE_FLAGS)}")
            elif options["enable"] or options["disable"]:
                name, value = (options["enable"], True) if options["enable"] else (options["disable"], False)
                set_flag(name, value, org)
                self.stdout.write(f"{name} {'enabled' if value else 'disabled'} ({scope})")
        except UnknownFlag as exc:
            raise CommandError(str(exc)) from None
        if options["list"]:
            for name, value in flags_for(org).items():
                self.stdout.write(f"{name}: {'on' if value else 'off'} ({scope})")
