"""Staff's second factor: a TOTP device (django-otp) that staff enrol once and confirm at
each login before the staff console (/staff/) or the admin (/admin/) let them in.

Customers' accounts are untouched. API tokens are machine credentials and need none.
"""

from base64 import b32encode
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import audit
from portal.actor import Actor, Via


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=8,
        label="Code from your authenticator app",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def verified(request: HttpRequest) -> bool:
    """Whether this session passed the second factor (django-otp's middleware tells)."""
    return bool(getattr(request.user, "is_verified", lambda: False)())


def to_second_factor(request: HttpRequest, next_url: str) -> HttpResponse:
    return redirect(f"{reverse('second_factor')}?{urlencode({'next': next_url})}")


def staff_verified_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only (others get a 404), and only once this session passed the second factor."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404
        if not verified(request):
            return to_second_factor(request, request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


class VerifiedAdminSite(admin.AdminSite):
    """The admin, for staff who passed their second factor this session."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and verified(request)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.is_staff and not verified(request):
            return to_second_factor(request, request.GET.get("next") or reverse("admin:index"))
        return super().login(request, extra_context)


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@login_required
def second_factor(request: HttpRequest) -> HttpResponse:
    """Enrol a TOTP device (first time: a QR code and the secret), or confirm a code."""
    user = request.user
    if not user.is_staff:
        raise Http404
    next_url = request.POST.get("next") or request.GET.get("next") or "/staff/hypervisors/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "/staff/hypervisors/"
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    enrolling = device is None
    if device is None:
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
        device = device or TOTPDevice.objects.create(
            user=user, name="authenticator", confirmed=False
        )
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            if enrolling:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit.record("staff.second_factor_enrol", user, Actor(user=user, via=Via.WEB))
            otp_login(request, device)
            return redirect(next_url)
        form.add_error("code", "That code is not valid now. Check your device's clock.")
    context = {"form": form, "next": next_url, "enrolling": enrolling}
    if enrolling:
        context |= {"qr": _qr_svg(device.config_url), "secret": _base32(device)}
    return render(
        request, "registration/second_factor.html", context, status=400 if form.errors else 200
    )


def _base32(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode()
