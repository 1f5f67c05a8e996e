"""Account pages: sign-up, organisation switcher, members and invitations, API tokens."""

from collections.abc import Callable
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal import access, audit, organisations, tokens
from portal.actor import Action
from portal.errors import Invalid
from portal.forms import InvitationForm, RoleForm, SignupForm, TokenForm
from portal.models import ApiToken, Invitation, Membership, Organisation, Role


def _invitation_next(request: HttpRequest) -> str:
    """The invitation page a visitor came from (its link led to log in, then sign up)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(wanted, {request.get_host()})
    return wanted if safe and wanted.startswith("/invitations/") else ""


def signup(request: HttpRequest) -> HttpResponse:
    """A new account. Coming from an invitation, it needs no organisation of its own and
    goes back to the invitation to accept it."""
    joining = _invitation_next(request)
    form = SignupForm(request.POST or None, joining=bool(joining))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            name = form.cleaned_data["organisation"]
            organisation = organisations.create_organisation(user, name) if name else None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if organisation is not None:
            request.session[access.SESSION_KEY] = str(organisation.uuid)
            messages.success(request, f"Welcome! {organisation.name} is ready.")
        return redirect(joining or "portal:home")
    return render(request, "registration/signup.html", {"form": form, "next": joining})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    organisation = access.current_organisation(request)
    if organisation is None:
        return render(request, "portal/no_organisation.html")
    return redirect("provisioning:cluster_list")


@login_required
@require_POST
def switch_organisation(request: HttpRequest) -> HttpResponse:
    organisation = get_object_or_404(
        access.for_user(Organisation.objects.all(), request.user),
        uuid=request.POST.get("organisation"),
    )
    request.session[access.SESSION_KEY] = str(organisation.uuid)
    messages.info(request, f"Now working in {organisation.name}.")
    return redirect("portal:home")


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    form = TokenForm(request.POST or None)
    raw = None
    if request.method == "POST" and form.is_valid():
        days = int(form.cleaned_data["lifetime_days"])
        token, raw = tokens.issue(
            access.signed_in(request),
            organisation,
            form.cleaned_data["name"],
            timedelta(days=days) if days else None,
        )
        audit.record("token.create", token, access.actor(request), organisation=organisation)
        form = TokenForm()
    mine = ApiToken.objects.filter(user=access.signed_in(request), organisation=organisation)
    return render(
        request,
        "portal/token_list.html",
        {"form": form, "tokens": mine, "raw_token": raw, "organisation": organisation},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_uuid: str) -> HttpResponse:
    token = get_object_or_404(ApiToken, uuid=token_uuid, user=request.user)
    if tokens.revoke(token):
        audit.record("token.revoke", token, access.actor(request), organisation=token.organisation)
        messages.success(request, f"Token {token.name} revoked.")
    return redirect("portal:token_list")


@login_required
def member_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organisations.invite(
            access.actor(request),
            organisation,
            form.cleaned_data["email"],
            Role(form.cleaned_data["role"]),
            _invitation_link(request),
        )
        messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
        return redirect("portal:member_list")
    return render(
        request,
        "portal/member_list.html",
        {
            "organisation": organisation,
            "members": organisation.memberships.select_related("user"),
            "invitations": organisation.invitations.filter(accepted_at__isnull=True),
            "form": form,
            "is_owner": access.can(request, Action.ADMIN, organisation),
            "roles": Role.choices,
        },
    )


def _membership_for_owner(request: HttpRequest, membership_uuid: str) -> Membership:
    return access.get_or_404(
        Membership.objects.select_related("organisation"),
        request,
        Action.ADMIN,
        uuid=membership_uuid,
    )


@login_required
@require_POST
def member_role(request: HttpRequest, membership_uuid: str) -> HttpResponse:
    membership = _membership_for_owner(request, membership_uuid)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            organisations.change_role(
                access.actor(request), membership, Role(form.cleaned_data["role"])
            )
            messages.success(request, f"{membership.user} is now {form.cleaned_data['role']}.")
        except Invalid as error:
            messages.error(request, " ".join(error.messages))
    return redirect("portal:member_list")


@login_required
@require_POST
def member_remove(request: HttpRequest, membership_uuid: str) -> HttpResponse:
    membership = _membership_for_owner(request, membership_uuid)
    if request.POST.get("confirm") != membership.user.username:
        messages.error(request, f"Confirm removing {membership.user} first.")
        return redirect("portal:member_list")
    try:
        organisations.remove_member(access.actor(request), membership)
        messages.success(request, f"{membership.user} removed.")
    except Invalid as error:
        messages.error(request, " ".join(error.messages))
    return redirect("portal:member_list")


def _invitation_for_owner(request: HttpRequest, invitation_uuid: str) -> Invitation:
    return access.get_or_404(
        Invitation.objects.select_related("organisation").filter(accepted_at__isnull=True),
        request,
        Action.ADMIN,
        uuid=invitation_uuid,
    )


def _invitation_link(request: HttpRequest) -> Callable[[str], str]:
    return lambda raw: request.build_absolute_uri(reverse("portal:accept_invitation", args=[raw]))


@login_required
@require_POST
def invitation_resend(request: HttpRequest, invitation_uuid: str) -> HttpResponse:
    invitation = _invitation_for_owner(request, invitation_uuid)
    organisations.resend_invitation(access.actor(request), invitation, _invitation_link(request))
    messages.success(request, f"Invitation sent to {invitation.email} again (a new link).")
    return redirect("portal:member_list")


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_uuid: str) -> HttpResponse:
    invitation = _invitation_for_owner(request, invitation_uuid)
    organisations.revoke_invitation(access.actor(request), invitation)
    messages.success(
        request, f"Invitation for {invitation.email} revoked; its link no longer works."
    )
    return redirect("portal:member_list")


@login_required
def accept_invitation(request: HttpRequest, raw: str) -> HttpResponse:
    invitation = organisations.pending_invitation(raw)
    if invitation is None:
        raise Http404("This invitation is unknown, used or expired.")
    if request.method == "POST":
        try:
            membership = organisations.accept(access.actor(request), invitation)
        except Invalid as error:
            messages.error(request, " ".join(error.messages))
            return redirect("portal:home")
        request.session[access.SESSION_KEY] = str(membership.organisation.uuid)
        messages.success(request, f"You joined {membership.organisation.name}.")
        return redirect("portal:home")
    return render(request, "portal/invitation_accept.html", {"invitation": invitation})
