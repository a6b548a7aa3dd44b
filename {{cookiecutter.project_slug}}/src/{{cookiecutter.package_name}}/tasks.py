"""The Celery worker's entry point: `celery -A {{ cookiecutter.package_name }}.tasks worker`.

Importing the package registers every job of the features it has; the worker's app is in
`jobs/worker.py`.
"""

from .jobs.worker import celery_app

__all__ = ["celery_app"]
