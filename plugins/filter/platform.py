"""Filters the deploy roles share, so that labels and names are defined once."""

from __future__ import annotations

PART_OF = "invoicing-platform"


def app_labels(name: str, component: str, version: str = "", instance: str = "") -> dict:
    """The full app.kubernetes.io label set for an object of application `name`."""
    labels = {
        **selector_labels(name, instance),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "ansible",
    }
    if version:
        # Label values are at most 63 characters; a content-hash tag fits.
        labels["app.kubernetes.io/version"] = version[:63]
    return labels


def selector_labels(name: str, instance: str = "") -> dict:
    """The labels that select an application's pods. Deliberately stable: a Deployment's
    selector cannot change, so nothing that varies per release belongs here."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance or name}


def image_tag(reference: str) -> str:
    """The tag of an image reference (`registry:5000/app:abc123` gives `abc123`)."""
    last = reference.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


class FilterModule:
    def filters(self) -> dict:
        return {
            "app_labels": app_labels,
            "selector_labels": selector_labels,
            "image_tag": image_tag,
        }
