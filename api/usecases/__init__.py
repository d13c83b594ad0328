"""Use cases shared by the API, the console and the study pages: admission, submission,
subscriptions, erasure. No Flask here."""
