"""What a launched node costs the control plane, counted rather than timed: the queries
and Python function calls per node of whole 3-node launches in one process (the create
POST, the worker's steps as eager tasks, the simulated guest's reports and first
heartbeat through the real views). CPU time on a shared machine moves by a quarter from
run to run; these counts do not, so they compare two versions of the code exactly.

Run: DATABASE_URL=postgres://... .venv/bin/python bench/launch_cost.py   (or without: SQLite)
Without CACHE_URL the cache is the scratch database's table, its queries counted (the
host-sync marks, about 3 a node). With CACHE_URL=redis://..., give it an empty database:
a mark a run before left, or a run slow enough to outlast one, moves the host syncs.
"""

import cProfile
import pstats
import tempfile
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from _django import scratch_database

NODES, LAUNCHES = 3, 3
ROOT = str(Path(__file__).resolve().parent.parent) + "/"
# A query is put down to the innermost view or task that ran it (eager tasks run inside
# the request that enqueued them).
ENTRIES = ("/tasks/", "views.py", "/api.py")
GUEST_SIMULATOR = "provisioning/tasks/guest_sim.py:simulate_guest"


def main() -> None:
    with scratch_database() as vendor:
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client

        from cloud.celery import app
        from portal import organisations, tokens
        from provisioning import demo, guest_sim
        from provisioning.models import Cluster

        settings.GUEST_SIM_SCALE, settings.CLOUD_FAULTS = 0, ""  # instant guests, no faults
        app.conf.task_always_eager = app.conf.task_eager_propagates = True
        demo.seed(Path(tempfile.mkdtemp()))
        guest = Client()

        def post(payload: dict[str, Any], path: str = guest_sim.PHONE_HOME_PATH) -> Any:
            response = guest.post(path, payload, content_type="application/json")
            return guest_sim.Reply(response.status_code, response.content.decode())

        guest_sim.post = post  # the simulated guest reaches the views in this process
        user = User.objects.create_user("bench")
        organisation = organisations.create_organisation(user, "Bench", slug="bench")
        _, raw = tokens.issue(user, organisation, "bench", None)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        by_entry: Counter[str] = Counter()

        def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if not sql.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")):
                entries = [
                    f"{f.filename.removeprefix(ROOT)}:{f.name}"
                    for f in traceback.extract_stack()
                    if f.filename.startswith(ROOT)
                    and "/.venv/" not in f.filename
                    and any(e in f.filename for e in ENTRIES)
                ]
                by_entry[entries[-1] if entries else "other"] += 1
            return execute(sql, params, many, context)

        def launch(name: str) -> None:
            body = {
                "name": name,
                "region": "demo",
                "pools": [{"name": "w", "size": "small", "count": NODES}],
            }
            reply = api.post("/api/v1/clusters", body, content_type="application/json")
            assert reply.status_code == 202, reply.content

        launch("warm")  # a process's first launch fills its caches
        profile = cProfile.Profile()
        with connection.execute_wrapper(counted):
            profile.enable()
            for index in range(LAUNCHES):
                launch(f"c{index}")
            profile.disable()
        states = set(Cluster.objects.values_list("status", flat=True))
        assert states == {"running"}, states
        nodes = NODES * LAUNCHES
        guests = by_entry[GUEST_SIMULATOR]  # on real hosts the VM's agent, not the portal
        control = sum(by_entry.values()) - guests
        calls = pstats.Stats(profile).total_calls / nodes  # type: ignore[attr-defined]
        print(f"{vendor}: {LAUNCHES} launches x {NODES} nodes, instant guests, in one process")
        print(f"control-plane queries per node: {control / nodes:.1f} (the simulated guest's own")
        print(f"  reads: {guests / nodes:.1f} more)")
        print(f"Python function calls per node, the simulated guest's included: {calls:,.0f}")
        print("queries per node, by the request or task that ran them:")
        for entry, count in by_entry.most_common():
            print(f"  {count / nodes:5.1f}  {entry}")


if __name__ == "__main__":
    main()
