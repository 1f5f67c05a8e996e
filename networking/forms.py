"""Page forms: types and choices only; every rule is checked by networking.services (the API
serializers parse the same fields and call the same services)."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from networking.models import Network, regions


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and hyphens.")
    cidr = forms.CharField(
        max_length=18,
        label="CIDR",
        initial="10.10.0.0/24",
        help_text="Private range (10/8, 172.16/12, 192.168/16), /16 to /28.",
    )
    region: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=None, to_field_name="slug", empty_label=None
    )
    egress = forms.BooleanField(
        required=False,
        label="Outbound internet (NAT)",
        help_text="Off: nodes reach only each other and the metadata service.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = regions()  # type: ignore[attr-defined]


class FirewallForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and hyphens.")
    network = forms.ModelChoiceField(
        queryset=Network.objects.none(), to_field_name="uuid", empty_label=None
    )

    def __init__(self, *args: Any, networks: QuerySet[Network], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].queryset = networks  # type: ignore[attr-defined]
