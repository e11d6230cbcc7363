"""Print the SQL queries and time of one request to each benchmarked endpoint.

Run with Django configured for the benchmark database: `python -m bench.api.profile`.
"""

import time

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.api.run import endpoints  # noqa: E402


def main() -> None:
    client = Client()
    for label, paths in endpoints():
        path = paths[0]
        client.get(path, secure=True, HTTP_HOST="127.0.0.1")
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path, secure=True, HTTP_HOST="127.0.0.1")
            elapsed_ms = (time.perf_counter() - started) * 1000
        sql_ms = sum(float(query["time"]) for query in queries.captured_queries) * 1000
        print(
            f"  {label:<28} status {response.status_code}  {len(queries):3d} queries "
            f"{sql_ms:7.1f} ms in SQL  {elapsed_ms:7.1f} ms total  {len(response.content)} bytes"
        )
        slowest = sorted(queries.captured_queries, key=lambda query: -float(query["time"]))[:3]
        for query in slowest:
            print(f"      {float(query['time']) * 1000:6.1f} ms  {query['sql'][:150]}")


if __name__ == "__main__":
    main()
