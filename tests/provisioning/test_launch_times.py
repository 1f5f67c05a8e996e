"""The public launch-time page: p50/p95 of the last 7 days, overall and per step, for
anyone, and nothing of any tenant on it."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from provisioning import launch_times
from provisioning.models import Cluster, NodeStep
from tests.provisioning.test_launch import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guest_over_client")]


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert launch_times.percentile(values, 0.5) == 50
    assert launch_times.percentile(values, 0.95) == 95
    assert launch_times.percentile([7.0], 0.95) == 7
    assert launch_times.percentile([], 0.5) is None


def test_anyone_sees_the_last_weeks_figures_and_no_tenant(
    demo_cloud: Any, alice: Any, acme: Any, api_for: Any
) -> None:
    client = api_for(alice, acme)
    for name in ("secret-project", "other"):
        launch(client, name=name, count=1)
    now = timezone.now()
    durations = {"secret-project": 30, "other": 90}
    for cluster in Cluster.objects.all():  # known durations
        took = timedelta(seconds=durations[cluster.name])
        Cluster.objects.filter(pk=cluster.pk).update(created_at=now - took, ready_at=now)
    old = Cluster.objects.get(name="other")
    NodeStep.objects.filter(node__cluster=old, step="import_image").update(
        started_at=now - timedelta(days=8, seconds=5), finished_at=now - timedelta(days=8)
    )
    cache.clear()
    page = Client().get("/status/launch-times")  # no login
    assert page.status_code == 200
    html = page.content.decode()
    overall = html[
        html.index('<tr id="overall">') : html.index("</tr>", html.index('id="overall"'))
    ]
    assert "<td>2</td>" in overall and "30.0 s" in overall and "90.0 s" in overall
    import_row = html[html.index("Import image") :].split("</tr>")[0]
    assert "<td>1</td>" in import_row  # the 8-day-old one is out of the window
    for private in ("secret-project", "Acme", "alice", "10.0.0."):
        assert private not in html
