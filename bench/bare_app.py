"""The production app plus one bare endpoint, for ``bench/ingest.py``: ``gunicorn bench.bare_app:app``.

``POST /bench/bare`` reads the body and answers 204, touching neither the database nor any
extension: the floor that Flask, gunicorn and the network set under the same server settings,
in the same server processes, as the webhook endpoint it is compared with. Everything else is
exactly ``wsgi:app`` (``create_app()`` with the configuration from the environment).
"""

from flask import Response, request

from app import create_app

app = create_app()


@app.post("/bench/bare")
def bare() -> Response:
    request.get_data(cache=False)  # the same body the webhook reads, read the same way
    return Response(status=204)
