"""VXLAN network identifiers (VNIs), unique per region, from a configurable range.

Callers hold the region's row lock (`lock_region`) from choosing a VNI until their network
row is committed, so two creations never pick the same one; the (region, segment_id) unique
constraint backs that up.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from networking.models import Network, Region
from portal.errors import Invalid

VNI_MAX = 2**24 - 1  # 24 bits on the wire


def lock_region(region: Region) -> None:
    Network.region_model()._default_manager.select_for_update().get(pk=region.pk)


def vni_range() -> range:
    low, high = settings.NETWORK_VNI_MIN, settings.NETWORK_VNI_MAX
    if not 1 <= low <= high <= VNI_MAX:
        raise ImproperlyConfigured(f"NETWORK_VNI_MIN/MAX need 1 <= MIN <= MAX <= {VNI_MAX}")
    return range(low, high + 1)


def parked(network: Network) -> int:
    """A retired network's segment id: above the VNI space, so its VNI is free again."""
    return VNI_MAX + network.pk


def allocate(region: Region) -> int:
    """The lowest free VNI of the region; Invalid when the range is used up."""
    span = vni_range()
    used = set(
        Network.objects.filter(
            region_id=region.pk, segment_id__gte=span.start, segment_id__lt=span.stop
        ).values_list("segment_id", flat=True)
    )
    vni = next((v for v in span if v not in used), None)
    if vni is None:
        raise Invalid(
            {"region": f"No free network segment left in {region.slug} "
             f"(VNIs {span.start}-{span.stop - 1} are all in use)."}
        )  # fmt: skip
    return vni
