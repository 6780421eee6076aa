"""Image reference filters, so that the node role and its tests agree on one rule."""

from __future__ import annotations


def containerd_ref(ref: str) -> str:
    """The fully qualified reference containerd and the kubelet use for a Docker reference:
    a name without a registry host gets docker.io/, and library/ when it has no slash."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"


class FilterModule:
    def filters(self) -> dict:
        return {"containerd_ref": containerd_ref}
