from django import forms
from django.db.models import QuerySet

from networking.models import Network
from provisioning.models import Region


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and hyphens.")
    cidr = forms.CharField(
        max_length=18,
        label="CIDR",
        initial="10.10.0.0/24",
        help_text="Private range (10/8, 172.16/12, 192.168/16), /16 to /28.",
    )
    region = forms.ModelChoiceField(
        queryset=Region.objects.order_by("slug"), to_field_name="slug", empty_label=None
    )


class FirewallForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and hyphens.")
    network = forms.ModelChoiceField(
        queryset=Network.objects.none(), to_field_name="uuid", empty_label=None
    )

    def __init__(self, *args: object, networks: QuerySet[Network], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["network"].queryset = networks  # type: ignore[attr-defined]
