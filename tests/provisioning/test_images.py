"""Base images: the builder's checks and K3s staging, publishing, replicas found by the
inventory sync, placement around hosts without the image, and the guest's bundle code.

No full build here (that is the real-VM tier's): the staging script runs for real on a
directory standing in for the image's root.
"""

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client

from portal.actor import Actor
from portal.errors import Invalid
from provisioning import failures, guest_seed, inventory, placement
from provisioning.drivers.xml import test_node_xml
from provisioning.images import build, publish
from provisioning.models import (
    BaseImage,
    Hypervisor,
    ImageReplica,
    K3sVersion,
    Node,
    NodeSize,
    Region,
    ReplicaState,
)
from tests.provisioning import inventory_fixtures
from tests.provisioning.inventory_fixtures import MakeHost

region = inventory_fixtures.region
make_host = inventory_fixtures.make_host

STAGE = Path(build.__file__).with_name("stage-k3s.sh")
VERSION = "v1.31.4+k3s1"
VOLUME = "base-v1.31.4-k3s1.qcow2"


def bundle_dir(tmp_path: Path, *names: str) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in names:
        (bundle / name).write_text(f"{name} contents\n")
    return bundle


def stage(root: Path, bundle: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["bash", str(STAGE), str(root)] + ([str(bundle)] if bundle else [])
    return subprocess.run(args, capture_output=True, text=True)


# The builder: staging the bundle, or the "no K3s" marker.


def test_without_a_bundle_the_image_is_marked_no_k3s(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert stage(root).returncode == 0
    assert "k3s_bundle_missing" in (root / "etc/k3s-portal/no-k3s").read_text()
    assert not (root / "opt/k3s").exists()


def test_a_bundle_goes_to_opt_k3s_executable(tmp_path: Path) -> None:
    root = tmp_path / "root"
    bundle = bundle_dir(tmp_path, *build.BUNDLE_FILES)
    assert stage(root, bundle).returncode == 0
    for name in build.BUNDLE_FILES:
        assert (root / "opt/k3s" / name).read_text() == f"{name} contents\n"
    assert (root / "opt/k3s/k3s").stat().st_mode & 0o777 == 0o755
    assert (root / "opt/k3s/install.sh").stat().st_mode & 0o777 == 0o755
    assert not (root / "etc/k3s-portal/no-k3s").exists()


def test_staging_refuses_an_incomplete_bundle(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = stage(root, bundle_dir(tmp_path, "k3s"))
    assert done.returncode == 2
    assert "no k3s-airgap-images-amd64.tar.zst" in done.stderr
    assert not (root / "opt/k3s").exists()


def test_build_image_names_what_the_bundle_lacks_before_building(tmp_path: Path) -> None:
    bundle = bundle_dir(tmp_path, "k3s", "install.sh")
    with pytest.raises(CommandError, match=r"missing k3s-airgap-images-amd64\.tar\.zst"):
        call_command("build_image", str(tmp_path / "out.qcow2"), "--k3s-bundle", str(bundle))
    assert not (tmp_path / "out.qcow2").exists()


def test_build_image_says_no_k3s_and_names_missing_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build.shutil, "which", lambda tool: None if tool == "extlinux" else tool)
    monkeypatch.setattr(build, "MBR", tmp_path / "no-mbr.bin")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("build_image", str(tmp_path / "out.qcow2"), "--size", "2G", stdout=out)
    assert str(raised.value).endswith("apt-get install -y extlinux syslinux-common")
    assert 'building a "no K3s" image' in out.getvalue()
    assert not (tmp_path / "out.qcow2").exists()


def test_the_manifest_says_whether_an_image_has_k3s(tmp_path: Path) -> None:
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"qcow")
    assert build.has_k3s(image) is None
    build.manifest_path(image).write_text(json.dumps({"has_k3s": False}))
    assert build.has_k3s(image) is False


# Publishing to test-driver hosts, which have no volume upload.


@pytest.fixture
def version(db: None) -> K3sVersion:
    return K3sVersion.objects.create(version=VERSION)


def host_with(make_host: MakeHost, tmp_path: Path, name: str, *volumes: str) -> Hypervisor:
    host = make_host(name, vcpus_total=8, memory_mib_total=16384)
    node = tmp_path / f"{name}.xml"
    node.write_text(test_node_xml(name, 8, 16384, "default", 200, volumes))
    return host


def test_publishing_to_test_driver_hosts_says_nothing_was_uploaded(
    tmp_path: Path, make_host: MakeHost, region: Region, version: K3sVersion
) -> None:
    with_it = host_with(make_host, tmp_path, "hv-a", VOLUME)
    without = host_with(make_host, tmp_path, "hv-b")
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"an image" * 1000)
    build.manifest_path(image).write_text(json.dumps({"has_k3s": False}))
    out = io.StringIO()
    with pytest.raises(CommandError, match="not on every host"):
        call_command(
            "publish_image", str(image), "--region", region.slug, "--version", VERSION, stdout=out
        )
    assert f"hv-a: present ({publish.NO_UPLOAD})" in out.getvalue()
    row = BaseImage.objects.get(region=region, version=version)
    assert (row.volume_name, row.size_bytes, row.has_k3s) == (VOLUME, 8000, False)
    assert row.sha256 == publish.sha256_of(image) and row.published_at is not None
    replicas = {r.hypervisor_id: r for r in ImageReplica.objects.filter(image=row)}
    assert replicas[with_it.pk].state == ReplicaState.PRESENT
    assert replicas[with_it.pk].detail == publish.NO_UPLOAD
    assert replicas[without.pk].state == ReplicaState.MISSING
    assert replicas[without.pk].sha256 == ""


def test_publish_image_wants_a_k3s_flag_without_a_manifest(
    tmp_path: Path, region: Region, version: K3sVersion
) -> None:
    image = tmp_path / "elsewhere.qcow2"
    image.write_bytes(b"x")
    with pytest.raises(CommandError, match="--k3s or --no-k3s"):
        call_command("publish_image", str(image), "--region", region.slug, "--version", VERSION)
    with pytest.raises(CommandError, match="Unknown region or K3s version"):
        call_command("publish_image", str(image), "--region", "nowhere", "--k3s-version", VERSION)


# The inventory sync finds missing images; placement avoids those hosts.


def test_a_host_without_the_base_volume_is_missing_at_sync_and_gets_no_nodes(
    tmp_path: Path, make_host: MakeHost, region: Region, version: K3sVersion, small: NodeSize
) -> None:
    good = host_with(make_host, tmp_path, "hv-good", VOLUME)
    bare = host_with(make_host, tmp_path, "hv-bare")
    never = make_host("hv-never-synced", vcpus_total=8, memory_mib_total=16384)
    image = BaseImage.objects.create(version=version, region=region, volume_name=VOLUME)
    for host in (good, bare):
        inventory.sync_hypervisor(host.pk)
    replica = ImageReplica.objects.get(image=image, hypervisor=bare)
    assert (replica.state, replica.detail) == (ReplicaState.MISSING, f"no volume {VOLUME}")
    assert ImageReplica.objects.get(image=image, hypervisor=good).state == ReplicaState.PRESENT

    size = small
    chosen = placement.plan(region, [size] * 4, version=version)
    # A host never checked stays eligible (the embedded demo has no replica rows).
    assert set(chosen.hosts) == {good.pk, never.pk}
    assert bare.pk in placement.plan(region, [size] * 6).hosts  # no image asked, no filter
    reasons = {v.host: v.reason for v in placement.explain(region, size, version)}
    assert reasons["hv-bare"] == f"rejected: no good copy of the {VERSION} base image"
    assert not reasons["hv-good"].startswith("rejected")

    # The volume arrives: the next sync makes the host eligible again.
    (tmp_path / "hv-bare.xml").write_text(
        test_node_xml("hv-bare", 8, 16384, "default", 200, (VOLUME,))
    )
    bare.uri = f"test://{tmp_path / 'hv-bare.xml'}?again"
    bare.save(update_fields=["uri"])
    inventory.sync_hypervisor(bare.pk)
    assert ImageReplica.objects.get(image=image, hypervisor=bare).state == ReplicaState.PRESENT
    assert bare.pk in placement.plan(region, [size] * 6, version=version).hosts


def test_a_wrong_digest_found_by_publishing_outlives_the_sync(
    tmp_path: Path, make_host: MakeHost, region: Region, version: K3sVersion
) -> None:
    host = host_with(make_host, tmp_path, "hv-a", VOLUME)
    image = BaseImage.objects.create(version=version, region=region, volume_name=VOLUME)
    ImageReplica.objects.create(
        image=image, hypervisor=host, state=ReplicaState.MISMATCH, detail="uploaded, but ..."
    )
    inventory.sync_hypervisor(host.pk)
    assert ImageReplica.objects.get(image=image, hypervisor=host).state == ReplicaState.MISMATCH


# The guest says its image has no K3s bundle: the portal records that code.

PHONE_HOME = "/api/v1/guest/phone-home"
GOOD = {"name": "web", "region": "demo", "pools": [{"name": "w", "size": "small", "count": 1}]}


def report(node: Node, step: str, state: str, **extra: str) -> int:
    payload = {"token": guest_seed.node_token(node), "step": step, "state": state, **extra}
    return Client().post(PHONE_HOME, payload, content_type="application/json").status_code


@pytest.fixture
def booted(demo_cloud: Region, alice: Any, acme: Any, api_for: Any, settings: Any) -> list[Node]:
    settings.GUEST_SIMULATOR = False
    cache.clear()
    api_for(alice, acme).post("/api/v1/clusters", GOOD, format="json")
    return list(Node.objects.order_by("-is_server", "id"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("code", "recorded"),
    [
        (failures.K3S_BUNDLE_MISSING, "k3s_bundle_missing"),
        ("not_a_code", "launch_k3s_failed"),
        ("hypervisor_unreachable", "launch_k3s_failed"),  # the portal's, not the guest's
        ("", "launch_k3s_failed"),
    ],
)
def test_a_guest_failure_may_name_its_code(booted: list[Node], code: str, recorded: str) -> None:
    server = booted[0]
    for step in ("cloud_init", "fetch_deps"):
        assert report(server, step, "started") == 200
        assert report(server, step, "done") == 200
    assert report(server, "launch_k3s", "started") == 200
    message = "k3s_bundle_missing: no /opt/k3s/k3s or /opt/k3s/install.sh"
    assert report(server, "launch_k3s", "failed", message=message, error_code=code) == 200
    server.refresh_from_db()
    assert (server.status, server.error_code, server.error_message) == ("failed", recorded, message)
    assert recorded in failures.NodeError.values


@pytest.mark.django_db(transaction=True)
def test_a_bad_failure_code_is_a_400_on_its_field(booted: list[Node]) -> None:
    payload = {"token": guest_seed.node_token(booted[0]), "step": "cloud_init", "state": "failed"}
    answer = Client().post(
        PHONE_HOME, {**payload, "error_code": "x" * 41}, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert answer.json()["error_code"] == ["Ensure this field has no more than 40 characters."]


FAKE_CURL = """#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --data ] && printf '%s\\n' "$2" >> "$REPORTS"; shift; done
printf 200
"""


def run_agent(
    tmp_path: Path, present: dict[str, str], env: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """The real agent script, its paths moved under tmp_path and curl replaced by one that
    writes down what would be posted; `present`: the bundle's files and their scripts."""
    opt, etc, bin_dir, lib = (tmp_path / d for d in ("opt-k3s", "etc", "bin", "rancher"))
    for folder in (opt, etc, bin_dir):
        folder.mkdir()
    for name, body in present.items():
        (opt / name).write_text(body)
        (opt / name).chmod(0o755)
    (etc / "agent.env").write_text(
        f"NODE_TOKEN=tok\nPHONE_HOME_URL=http://portal.test/p\nIS_SERVER=1\n{env}"
    )
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    script = tmp_path / "agent.sh"
    moved = {"/opt/k3s": opt, "/etc/k3s-portal": etc, "/usr/local/bin": bin_dir}
    text = guest_seed.AGENT_SCRIPT.replace("/var/lib/rancher", str(lib))
    for real, there in moved.items():
        text = text.replace(real, str(there))
    script.write_text(text)
    reports = tmp_path / "reports"
    run_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "REPORTS": str(reports)}
    done = subprocess.run(["sh", str(script)], env=run_env, capture_output=True, text=True)
    return done, [json.loads(line) for line in reports.read_text().splitlines()]


@pytest.mark.parametrize("present", [(), ("k3s", "k3s-airgap-images-amd64.tar.zst")])
def test_the_agent_without_a_bundle_gets_through_fetch_deps_and_names_the_code(
    tmp_path: Path, present: tuple[str, ...]
) -> None:
    done, posted = run_agent(tmp_path, dict.fromkeys(present, "#!/bin/sh\n"))
    assert done.returncode == 1, done.stderr
    # A step's end and the next one's start go in one request; the failure alone.
    assert [[(r["step"], r["state"]) for r in p.get("reports", [p])] for p in posted] == [
        [("cloud_init", "done"), ("fetch_deps", "started")],
        [("fetch_deps", "done"), ("launch_k3s", "started")],
        [("launch_k3s", "failed")],
    ]
    assert posted[-1]["error_code"] == "k3s_bundle_missing"
    assert posted[-1]["message"].startswith("k3s_bundle_missing: ")
    assert not (tmp_path / "var").exists()


def test_the_agent_starts_k3s_with_the_pool_s_labels_taints_and_cni_flags(
    tmp_path: Path,
) -> None:
    args = tmp_path / "install-args"
    bundle = {
        "k3s": "#!/bin/sh\n",
        "k3s-airgap-images-amd64.tar.zst": "",
        "install.sh": f'#!/bin/sh\nprintf "%s\\n" "$@" > {args}\nexit 1\n',
    }
    flags = "--node-label=tier=web --node-taint=db=true:NoSchedule --flannel-backend=none"
    done, posted = run_agent(
        tmp_path,
        bundle,
        f"NODE_NAME=n1\nK3S_VERSION=v1\nK3S_JOIN_TOKEN=t\nK3S_TLS_SAN=\nK3S_ARGS='{flags}'\n",
    )
    assert done.returncode == 1, done.stderr
    assert posted[-1]["message"] == "k3s server did not start"
    assert args.read_text().split() == ["server", "--node-name", "n1", *flags.split()]


def test_new_contents_under_a_published_volume_name_are_refused(
    tmp_path: Path, make_host: MakeHost, region: Region, version: K3sVersion
) -> None:
    """Nodes' disks are overlays of the base volume: replacing its bytes would break them."""
    host_with(make_host, tmp_path, "hv-a", VOLUME)
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"first image" * 100)
    publish.publish(Actor.system(), image, region, version, VOLUME, has_k3s=False)
    first = BaseImage.objects.get(region=region, version=version).sha256
    image.write_bytes(b"second image" * 100)
    with pytest.raises(Invalid, match="under a new --volume"):
        publish.publish(Actor.system(), image, region, version, VOLUME, has_k3s=False)
    assert BaseImage.objects.get(region=region, version=version).sha256 == first
    publish.publish(Actor.system(), image, region, version, "base-2.qcow2", has_k3s=False)
    assert BaseImage.objects.get(region=region, version=version).volume_name == "base-2.qcow2"
