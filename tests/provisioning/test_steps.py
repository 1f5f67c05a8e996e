"""The step table, status groups and transition tables that the pipeline reads."""

import pytest

from provisioning import failures, faults, guest_sim, pipeline, steps
from provisioning.models import Hypervisor, Node, NodeStep
from provisioning.states import (
    CLUSTER_GONE,
    CLUSTER_LIVE,
    NODE_ACTIVE,
    NODE_GONE,
    HypervisorState,
    IllegalTransition,
    transition,
)


def test_the_table_orders_the_five_steps_and_names_who_performs_them() -> None:
    assert steps.NAMES == ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s")
    assert [s.name for s in steps.performed_by(steps.Performer.WORKER)] == [
        "import_image",
        "start_vm",
    ]
    assert steps.next_step("start_vm") == steps.get("cloud_init")
    assert steps.next_step("launch_k3s") is None
    assert steps.previous_step("import_image") is None
    assert steps.previous_step("fetch_deps") == steps.get("cloud_init")
    assert steps.carried_by("ensure_domain") == steps.get("start_vm")
    assert steps.carried_by("start_domain") is None


def test_the_models_choices_and_the_simulator_follow_the_table() -> None:
    assert NodeStep._meta.get_field("step").choices == [
        ("import_image", "Import image"),
        ("start_vm", "Start VM"),
        ("cloud_init", "Cloud-init"),
        ("fetch_deps", "Fetch dependencies"),
        ("launch_k3s", "Launch K3s"),
    ]
    assert [(s.name, state) for s, state in guest_sim.SEQUENCE[:2]] == [
        ("cloud_init", "started"),
        ("cloud_init", "done"),
    ]
    assert [s.guest_seconds for s, state in guest_sim.SEQUENCE if state == "started"] == [
        14,
        18,
        22,
    ]


def test_every_worker_step_has_driver_work() -> None:
    workers = {s.name for s in steps.performed_by(steps.Performer.WORKER)}
    assert workers == set(pipeline.WORKER_STEPS)
    assert all(steps.get(name).driver_call for name in workers)


def test_unknown_fault_steps_are_refused(settings) -> None:
    settings.CLOUD_FAULTS = "boot_rocket:1"
    with pytest.raises(Exception, match="unknown step"):
        faults.probabilities()


def test_error_codes_are_choices_of_the_node() -> None:
    codes = {value for value, _ in Node._meta.get_field("error_code").flatchoices}
    assert {
        "hypervisor_unreachable",
        "step_timeout",
        "server_failed",
        "injected_fault",
        "invalid_config",
        "libvirt_error",
        "cloud_init_failed",
        "fetch_deps_failed",
        "launch_k3s_failed",
    } <= codes
    assert failures.step_failed("fetch_deps") in codes


def test_named_groups() -> None:
    assert "deleted" not in CLUSTER_LIVE and set(CLUSTER_GONE) == {"deleting", "deleted"}
    assert set(NODE_ACTIVE) == {"pending", "provisioning", "running"}
    assert set(NODE_GONE) == {"deleting", "deleted"}


@pytest.mark.django_db
def test_hypervisor_states_move_through_their_table(demo_cloud) -> None:
    host = Hypervisor.objects.first()
    assert host is not None and host.state == HypervisorState.ACTIVE
    assert transition(host, [HypervisorState.ACTIVE], HypervisorState.CORDONED)
    assert Hypervisor.objects.get(pk=host.pk).state == "cordoned" == host.state
    assert not transition(host, [HypervisorState.ACTIVE], HypervisorState.OFFLINE)  # not there
    with pytest.raises(IllegalTransition):
        transition(host, [HypervisorState.CORDONED], HypervisorState.OFFLINE)
