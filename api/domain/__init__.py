"""The domain: jobs, studies, audiences, metering, billing, accounts, webhooks. No Flask here."""
