"""Staff set how a hypervisor virtualises its guests: virt type, CPU mode and model, machine.

Blank fields mean "what the host's domcapabilities offer"; the inventory sync fills them in.
`add_hypervisor` and the staff API both validate through `check()`, so they agree.
"""

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from portal import audit
from portal.actor import Actor
from provisioning.models import CpuMode, Hypervisor

FIELDS = ("virt_type", "cpu_mode", "cpu_model", "machine_type")
# libvirt's CPU model and machine names ("Skylake-Client-v4", "pc-q35-7.2"), nothing else.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check(hypervisor: Hypervisor) -> None:
    """Raise ValidationError naming each bad field (choices, names, custom needs a model)."""
    errors: dict[str, list[str]] = {}
    for name in ("cpu_model", "machine_type"):
        value = getattr(hypervisor, name)
        if value and not NAME_RE.match(value):
            errors[name] = ["Letters, digits, '.', '_' and '-' only, as libvirt names it."]
    try:
        hypervisor.full_clean()
    except ValidationError as err:
        for name, messages in err.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def change(actor: Actor, hypervisor: Hypervisor, changes: Mapping[str, str]) -> list[str]:
    """Apply the given virtualisation fields (a blank one goes back to auto-detection at the
    next sync). Returns the names of the fields that changed; new domains use them, running
    ones keep what they were started with."""
    actor.require_staff()
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a virtualisation field."] for name in sorted(unknown)})
    before = {name: getattr(hypervisor, name) for name in FIELDS}
    for name, value in changes.items():
        setattr(hypervisor, name, value)
    if "cpu_mode" in changes and hypervisor.cpu_mode != CpuMode.CUSTOM:
        hypervisor.cpu_model = ""  # leaving custom drops its model
    check(hypervisor)
    changed = [name for name in FIELDS if getattr(hypervisor, name) != before[name]]
    if changed:
        with transaction.atomic():
            Hypervisor.objects.filter(pk=hypervisor.pk).update(
                **{name: getattr(hypervisor, name) for name in changed}
            )
            audit.record(
                "hypervisor.virtualisation",
                hypervisor,
                actor,
                changes={n: {"from": before[n], "to": getattr(hypervisor, n)} for n in changed},
            )
    return changed
