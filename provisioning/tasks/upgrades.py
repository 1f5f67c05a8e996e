"""Rolling upgrades' moves (provisioning.upgrades): after each change, and on beat, so a
rollout resumes after a worker restart."""

from celery import shared_task

from provisioning import enqueue, upgrades


@shared_task(name=enqueue.ROLL_UPGRADE, ignore_result=True)
def roll_upgrade(cluster_id: int) -> None:
    upgrades.step(cluster_id)


@shared_task(name="provisioning.roll_upgrades", ignore_result=True)
def roll_upgrades() -> int:
    return upgrades.step_all()
