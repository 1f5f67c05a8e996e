from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("organisations/switch/", views.switch_organisation, name="switch_organisation"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<uuid:token_uuid>/revoke/", views.token_revoke, name="token_revoke"),
    path("members/", views.member_list, name="member_list"),
    path("members/<uuid:membership_uuid>/role/", views.member_role, name="member_role"),
    path("members/<uuid:membership_uuid>/remove/", views.member_remove, name="member_remove"),
    path(
        "members/invitations/<uuid:invitation_uuid>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "members/invitations/<uuid:invitation_uuid>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:raw>/", views.accept_invitation, name="accept_invitation"),
]
