from django import forms

from observability.webhooks.models import SUBSCRIBABLE


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000, label="URL", help_text="http(s), reachable from the internet."
    )
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in SUBSCRIBABLE],
        initial=SUBSCRIBABLE,
        widget=forms.CheckboxSelectMultiple,
    )
    description = forms.CharField(max_length=200, required=False)
