from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import access


class MeView(APIView):
    """Who the caller is, and the organisation a token (or the session) acts in."""

    def get(self, request: Request) -> Response:
        organisation = access.current_organisation(request)
        return Response(
            {
                "username": request.user.get_username(),
                "is_staff": request.user.is_staff,
                "organisation": organisation.slug if organisation else None,
                "organisations": [
                    {"slug": m.organisation.slug, "role": m.role}
                    for m in access.memberships(request.user)
                ],
            }
        )
