"""Wiring: settings -> services (database, storage, queue, job kinds), the Celery worker and
`emoscope-admin`. No Flask here."""
