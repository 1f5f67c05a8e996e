"""The webhooks page: the organisation's webhooks with their last deliveries, a form to add
one (its secret shown once), delete. Thin over services, like the tokens page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from observability.webhooks import services
from observability.webhooks.forms import WebhookForm
from observability.webhooks.models import Delivery, Webhook
from portal import access
from portal.actor import Action
from portal.errors import Invalid
from portal.forms import add_errors

LAST_DELIVERIES = 5


@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    organisation = access.organisation_or_404(request)
    actor = access.actor(request)
    form = WebhookForm(request.POST or None)
    created = None
    if request.method == "POST":
        actor.require(Action.CHANGE, organisation)  # a 403 before the form says anything
        if form.is_valid():
            try:
                created = services.create_webhook(actor, organisation, **form.cleaned_data)
            except Invalid as error:
                add_errors(form, error)
            else:
                form = WebhookForm()
    last = Delivery.objects.order_by("-id")[:LAST_DELIVERIES]
    webhooks = access.for_user(
        Webhook.objects.all(), request.user, organisation=organisation
    ).prefetch_related(Prefetch("deliveries", queryset=last, to_attr="last_deliveries"))
    return render(
        request,
        "observability/webhook_list.html",
        {
            "organisation": organisation,
            "webhooks": webhooks,
            "form": form,
            "created": created,
            "can_change": access.can(request, Action.CHANGE, organisation),
        },
    )


@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: str) -> HttpResponse:
    webhook = access.get_or_404(
        Webhook.objects.select_related("organisation"), request, Action.CHANGE, uuid=pk
    )
    services.delete_webhook(access.actor(request), webhook)
    messages.success(request, f"The {webhook} was deleted.")
    return redirect("webhooks:webhook_list")
