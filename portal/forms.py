from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from portal.errors import Invalid
from portal.models import Role


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)
    organisation = forms.CharField(
        max_length=100, help_text="Your company or team; you can invite others later."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def __init__(self, *args: Any, joining: bool = False, **kwargs: Any) -> None:
        """`joining`: the account comes to accept an invitation, so an organisation of
        its own is optional."""
        super().__init__(*args, **kwargs)
        if joining:
            field = self.fields["organisation"]
            field.required = False
            field.help_text = "Optional: you are joining an organisation by invitation."


class TokenForm(forms.Form):
    LIFETIMES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("0", "No expiry")]
    name = forms.CharField(max_length=100)
    lifetime_days = forms.ChoiceField(choices=LIFETIMES, initial="90", label="Expires after")


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def add_errors(form: forms.Form, error: Invalid) -> None:
    """A service's refusal on the form: under the field it names, else above the form."""
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)
