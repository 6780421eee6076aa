#!/usr/bin/python
"""Image references tagged with the content hash of the build context that shapes them."""

import fnmatch
import hashlib
import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: service_image_context_hash
short_description: Tag images with the content hash of their part of a Docker build context
description:
  - For each image, walks its C(paths) below I(root) in a stable order and hashes each file's
    relative path, executable bit and content, skipping names that match I(exclude). The
    image's C(extra) string is folded in first (its base image, build arguments).
  - One call covers every image, so a no-change run costs one module execution.
  - Read-only; never reports a change.
options:
  root:
    description: The build context directory.
    type: path
    required: true
  images:
    description:
      - Image name to a dict with C(paths), files or directories relative to I(root), and
        optional C(extra), a string folded into the hash.
    type: dict
    required: true
  exclude:
    description: Glob patterns matched against every path component; matches are not hashed.
    type: list
    elements: str
    default: []
  prefix:
    description: Repository prefix of the returned references.
    type: str
    default: ""
  tag_length:
    description: How many hex digits of the hash make the tag.
    type: int
    default: 16
"""

RETURN = r"""
hashes:
  description: Image name to the full sha256 hex digest.
  type: dict
  returned: always
refs:
  description: Image name to C(prefix/name:tag).
  type: dict
  returned: always
"""


def _included(name: str, exclude: list[str]) -> bool:
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def _files(root: str, relative: str, exclude: list[str]) -> list[str]:
    top = os.path.join(root, relative)
    if os.path.isfile(top):
        return [relative]
    if not os.path.isdir(top):
        raise FileNotFoundError(f"{top}: no such file or directory in the build context")
    found = []
    for directory, subdirs, files in os.walk(top):
        subdirs[:] = [d for d in subdirs if _included(d, exclude)]
        found.extend(
            os.path.relpath(os.path.join(directory, name), root)
            for name in files
            if _included(name, exclude)
        )
    return found


def context_hash(root: str, paths: list[str], extra: str, exclude: list[str]) -> str:
    digest = hashlib.sha256(extra.encode())
    files = sorted({f for relative in paths for f in _files(root, relative, exclude)})
    for relative in files:
        full = os.path.join(root, relative)
        digest.update(f"\0{relative}\0{os.access(full, os.X_OK):d}\0".encode())
        with open(full, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "images": {"type": "dict", "required": True},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "prefix": {"type": "str", "default": ""},
            "tag_length": {"type": "int", "default": 16},
        },
        supports_check_mode=True,
    )
    p = module.params
    hashes = {}
    try:
        for name, recipe in p["images"].items():
            paths, extra = list(recipe["paths"]), str(recipe.get("extra", ""))
            hashes[name] = context_hash(p["root"], paths, extra, p["exclude"])
    except (OSError, TypeError, KeyError) as error:
        module.fail_json(msg=f"cannot hash the build context: {error}")
    prefix = p["prefix"].rstrip("/") + "/" if p["prefix"] else ""
    refs = {name: f"{prefix}{name}:{digest[: p['tag_length']]}" for name, digest in hashes.items()}
    module.exit_json(changed=False, hashes=hashes, refs=refs)


if __name__ == "__main__":
    main()
