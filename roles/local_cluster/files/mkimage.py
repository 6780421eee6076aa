#!/usr/bin/env python3
"""Make a one-layer container image as a `docker save`-format tarball, without a registry.

`ctr images import` and `docker load` both read the result. The layer is reproducible
(fixed mtimes and owners), so the same inputs always give the same image digest.

  mkimage.py --tag NAME:TAG --out image.tar \
      --file /usr/lib/pause:/pause --entrypoint /pause \
      [--symlink /bin/sh:/bin/busybox ...] [--dir /tmp:1777 ...] [--user 65535]
"""

import argparse
import hashlib
import io
import json
import tarfile


def _add_parents(layer: tarfile.TarFile, path: str, seen: set[str]) -> None:
    parts = path.strip("/").split("/")[:-1]
    for i in range(len(parts)):
        name = "/".join(parts[: i + 1])
        if name not in seen:
            seen.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            layer.addfile(info)


def build_layer(args: argparse.Namespace) -> bytes:
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for spec in args.dir:
            path, _, mode = spec.partition(":")
            _add_parents(layer, path + "/x", seen)
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, int(mode or "755", 8), 0
            layer.addfile(info)
        for spec in args.file:
            src, dest = spec.split(":", 1)
            _add_parents(layer, dest, seen)
            with open(src, "rb") as fh:
                data = fh.read()
            info = tarfile.TarInfo(dest.strip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            layer.addfile(info, io.BytesIO(data))
        for spec in args.symlink:
            link, target = spec.split(":", 1)
            _add_parents(layer, link, seen)
            info = tarfile.TarInfo(link.strip("/"))
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
            layer.addfile(info)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--file", action="append", default=[], help="SRC:DEST")
    parser.add_argument("--symlink", action="append", default=[], help="LINK:TARGET")
    parser.add_argument("--dir", action="append", default=[], help="PATH[:MODE]")
    parser.add_argument("--entrypoint", action="append", default=[])
    parser.add_argument("--cmd", action="append", default=[])
    parser.add_argument("--user", default="")
    parser.add_argument("--env", action="append", default=["PATH=/bin:/usr/bin:/sbin:/usr/sbin"])
    args = parser.parse_args()

    layer = build_layer(args)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": args.entrypoint or None, "Cmd": args.cmd or None,
                   "Env": args.env, "User": args.user},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "invoicing-platform mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [args.tag], "Layers": [layer_name]}]

    with tarfile.open(args.out, "w") as out:
        for name, data in (
            (config_name, config_bytes),
            (layer_name, layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            out.addfile(info, io.BytesIO(data))
    print(f"{args.tag} {diff_id}")


if __name__ == "__main__":
    main()
