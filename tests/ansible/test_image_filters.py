"""The image filters the local cluster's import decides with (plugins/filter/images.py)."""

import importlib.util

import pytest

from tests.support import REPO

_spec = importlib.util.spec_from_file_location("images", REPO / "plugins" / "filter" / "images.py")
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)

LISTING = """\
REF TYPE LABELS
docker.io/library/app:1 x io.invoicing-platform.docker-id=sha256:aa,io.cri-containerd.image=managed
example.org/tool:2 x io.cri-containerd.image=managed,io.invoicing-platform.docker-id=sha256:bb
docker.io/library/old:1 x io.cri-containerd.image=managed
"""


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("app:1", "docker.io/library/app:1"),
        ("team/app:1", "docker.io/team/app:1"),
        ("example.org/tool:2", "example.org/tool:2"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
        ("localhost/app:1", "localhost/app:1"),
    ],
)
def test_containerd_ref_qualifies_names_as_the_kubelet_does(ref: str, full: str) -> None:
    assert images.containerd_ref(ref) == full


def test_only_references_missing_under_the_same_docker_id_are_imported() -> None:
    docker = [
        {"Id": "sha256:aa", "RepoTags": ["app:1", "alias:1"]},
        {"Id": "sha256:bb", "RepoTags": ["example.org/tool:2"]},
        {"Id": "sha256:cc", "RepoTags": ["old:1"]},
    ]
    wanted = ["app:1", "alias:1", "example.org/tool:2", "old:1"]
    missing = images.images_to_import(docker, wanted, LISTING)
    # app:1 and tool:2 are there under their ids; alias:1 shares app's id but is not imported
    # under its own name; old:1 is there without the label (imported by hand): import again.
    assert [m["ref"] for m in missing] == ["alias:1", "old:1"]
    assert missing[0] == {
        "ref": "alias:1",
        "containerd_ref": "docker.io/library/alias:1",
        "id": "sha256:aa",
    }


def test_a_rebuilt_image_is_imported_again() -> None:
    rebuilt = [{"Id": "sha256:dd", "RepoTags": ["app:1"]}]
    assert [m["id"] for m in images.images_to_import(rebuilt, ["app:1"], LISTING)] == ["sha256:dd"]
