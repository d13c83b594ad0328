"""`emoscope-admin`: database migrations, accounts and keys, without the web server."""

from __future__ import annotations

import argparse
import os
import sys
import time

from api.domain import jobs, orphans
from api.domain.billing import Billing
from api.store import repository
from api.store.db import Account, Database
from api.wiring.config import InsecureSettings, Settings
from api.wiring.services import job_context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="emoscope-admin")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the database schema")
    account = commands.add_parser("create-account", help="create an account and print its id")
    account.add_argument("name")
    key = commands.add_parser("create-key", help="create an API key and print it (shown only once)")
    key.add_argument("account_id", type=int)
    key.add_argument("--name", default="")
    key.add_argument("--scopes", default="analyze")
    commands.add_parser("demo-key", help="migrate, ensure a 'demo' account, print a new key for it")
    commands.add_parser("sweep", help="delete job results past their retention window, and objects no row needs")
    sender = commands.add_parser("push-usage", help="report pending usage to Stripe (STRIPE_API_KEY must be set)")
    sender.add_argument("--every", type=float, default=0, help="repeat every N seconds (0: once)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except InsecureSettings as exc:
        sys.exit(f"emoscope-admin: {exc}")
    db = Database(settings.database_url)
    if args.command == "push-usage":
        push_usage_forever(settings, db, args.every)
        return
    if args.command == "sweep":
        context = job_context(settings, with_analyzer=False, db=db)
        print(f"deleted {jobs.sweep(context)} expired results and {orphans.sweep(context)} orphan objects")
        return
    if args.command in ("migrate", "demo-key"):
        db.migrate()
    with db.session.begin() as session:
        if args.command == "create-account":
            print(repository.create_account(session, args.name).id)
        elif args.command == "create-key":
            owner = session.get(Account, args.account_id)
            if owner is None:
                parser.error(f"no account with id {args.account_id}")
            _, secret = repository.create_api_key(
                session, owner, settings.api_key_pepper, args.name, tuple(args.scopes.split(","))
            )
            print(secret)
        elif args.command == "demo-key":
            owner = repository.account_by_name(session, "demo") or repository.create_account(session, "demo")
            _, secret = repository.create_api_key(session, owner, settings.api_key_pepper, "demo")
            print(f"Demo API key (shown once): {secret}")
            base = local_url(os.environ.get("EMOSCOPE_BIND", "127.0.0.1:8000"))
            print(f"Try: curl -H 'Authorization: Bearer {secret}' -F file=@photo.jpg {base}/v1/analyze")
            # The key travels in the fragment, which browsers never send; the page moves it to tab storage.
            print(f"Or open {base}/demo#key={secret} and choose a photo")


def local_url(bind: str) -> str:
    """Where gunicorn's `EMOSCOPE_BIND` serves, as a browser on this machine reaches it."""
    host, _, port = bind.rpartition(":")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '[::]') else host}:{port}"


def push_usage_forever(settings: Settings, db: Database, every: float) -> None:
    if settings.stripe is None:
        sys.exit("push-usage needs STRIPE_API_KEY (and STRIPE_PRICE_ID) in the environment")
    billing = Billing(settings.stripe)
    while True:
        sent = billing.push_usage(db)
        print(f"reported {sent} usage events to Stripe", flush=True)
        if every <= 0:
            return
        time.sleep(every)


if __name__ == "__main__":
    main()
