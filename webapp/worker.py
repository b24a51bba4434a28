"""Entry point of the task worker: ``huey_consumer webapp.worker.huey``.

Building the app here loads every configured plugin, so tasks and periodic jobs that plugins
register are known to the consumer before it starts taking work.
"""

from webapp import create_app, tasks

app = create_app()
tasks.use_app(app)
huey = tasks.huey

__all__ = ["app", "huey"]
