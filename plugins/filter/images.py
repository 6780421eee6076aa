"""Image reference filters, so that the node role and its tests agree on one rule."""

from __future__ import annotations

import re


def containerd_ref(ref: str) -> str:
    """The fully qualified reference containerd and the kubelet use for a Docker reference:
    a name without a registry host gets docker.io/, and library/ when it has no slash."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"


LABEL = "io.invoicing-platform.docker-id"
_IMPORTED = re.compile(rf"^(\S+)\s.*{re.escape(LABEL)}=(sha256:[0-9a-f]+)", re.MULTILINE)


def images_to_import(docker_images: list[dict], wanted: list[str], ctr_listing: str) -> list[dict]:
    """Which of the `wanted` Docker references containerd lacks: those whose containerd
    reference is not listed (`ctr images ls`) with the label naming the same Docker image id.
    Returns [{ref, containerd_ref, id}] in the order wanted."""
    imported = set(_IMPORTED.findall(ctr_listing))
    ids = {tag: image["Id"] for image in docker_images for tag in image.get("RepoTags") or []}
    missing = []
    for ref in wanted:
        entry = {"ref": ref, "containerd_ref": containerd_ref(ref), "id": ids.get(ref, "")}
        if (entry["containerd_ref"], entry["id"]) not in imported:
            missing.append(entry)
    return missing


class FilterModule:
    def filters(self) -> dict:
        return {"containerd_ref": containerd_ref, "images_to_import": images_to_import}
