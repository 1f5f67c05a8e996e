"""What a customer can choose from when launching a cluster: regions, sizes, K3s versions."""

from rest_framework import generics, serializers

from provisioning.models import K3sVersion, NodeSize, Region


class RegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = ["slug", "name"]


class NodeSizeSerializer(serializers.ModelSerializer):
    class Meta:
        model = NodeSize
        fields = ["slug", "vcpus", "memory_mib", "disk_gib", "monthly_price"]


class K3sVersionSerializer(serializers.ModelSerializer):
    default = serializers.BooleanField(source="is_default")
    # The regions holding a base image of this version, i.e. where it can be launched.
    regions = serializers.SerializerMethodField()

    class Meta:
        model = K3sVersion
        fields = ["slug", "version", "default", "regions"]

    def get_regions(self, version: K3sVersion) -> list[str]:
        return sorted(image.region.slug for image in version.images.all())


class RegionList(generics.ListAPIView):
    queryset = Region.objects.all()
    serializer_class = RegionSerializer


class NodeSizeList(generics.ListAPIView):
    queryset = NodeSize.objects.all()
    serializer_class = NodeSizeSerializer


class K3sVersionList(generics.ListAPIView):
    queryset = K3sVersion.objects.prefetch_related("images__region")
    serializer_class = K3sVersionSerializer
