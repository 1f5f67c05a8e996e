from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import access
from portal.models import Role


class MembershipOutput(serializers.Serializer):
    slug = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    organisation = serializers.CharField(
        allow_null=True, help_text="The organisation this caller acts in."
    )
    organisations = MembershipOutput(many=True)


class MeView(APIView):
    """Who the caller is, and the organisation a token (or the session) acts in."""

    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        organisation = access.current_organisation(request)
        return Response(
            MeOutput(
                {
                    "username": request.user.get_username(),
                    "is_staff": request.user.is_staff,
                    "organisation": organisation.slug if organisation else None,
                    "organisations": [
                        {"slug": m.organisation.slug, "role": m.role}
                        for m in access.memberships(request.user)
                    ],
                }
            ).data
        )
