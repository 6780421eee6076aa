"""Quality gates on the Ansible code: syntax and pinned collection versions (ansible-lint runs in
scripts/test.sh's lint tier)."""

import subprocess

import pytest
import yaml

from tests.ansible.conftest import PROD_VAULT, VENV_BIN, ansible_env, playbook
from tests.support import REPO

PLAYBOOKS = ["site.yml", *sorted(str(p.relative_to(REPO)) for p in REPO.glob("playbooks/*.yml"))]


@pytest.mark.parametrize("inventory", ["inventories/dev", "inventories/prod"])
@pytest.mark.parametrize("path", PLAYBOOKS)
def test_playbook_syntax(path: str, inventory: str) -> None:
    playbook("--syntax-check", "-i", inventory, *PROD_VAULT, path)


def test_requirements_yml_pins_the_collections_the_ansible_package_ships() -> None:
    pinned = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    listed = subprocess.run(
        [VENV_BIN / "ansible-galaxy", "collection", "list", "--format", "yaml"],
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed: dict[str, str] = {}
    for collections in yaml.safe_load(listed).values():
        for name, info in collections.items():
            installed.setdefault(name, info["version"])
    assert {c["name"]: installed.get(c["name"]) for c in pinned} == {
        c["name"]: c["version"] for c in pinned
    }


def test_every_role_has_defaults_argument_specs_and_readme() -> None:
    for role in sorted((REPO / "roles").iterdir()):
        assert (role / "meta" / "argument_specs.yml").is_file(), role.name
        assert (role / "README.md").is_file(), role.name
        defaults = role / "defaults" / "main.yml"
        if defaults.is_file():
            names = (yaml.safe_load(defaults.read_text()) or {}).keys()
            assert all(n.startswith(f"{role.name}_") for n in names), (role.name, list(names))


def test_no_role_defaults_a_variable_its_argument_specs_require() -> None:
    """A default would satisfy `required: true`, so the check could never fire."""
    for role in sorted((REPO / "roles").iterdir()):
        defaults = role / "defaults" / "main.yml"
        names = set((yaml.safe_load(defaults.read_text()) or {}) if defaults.is_file() else {})
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
        required = {
            name
            for entry in specs["argument_specs"].values()
            for name, option in (entry.get("options") or {}).items()
            if option.get("required")
        }
        assert not required & names, (role.name, sorted(required & names))


def test_the_vault_client_prints_the_password_from_the_environment_and_refuses_without() -> None:
    client = REPO / "inventories" / "prod" / "vault-client.sh"
    env = {k: v for k, v in ansible_env().items() if k != "INVOICING_VAULT_PASSWORD"}
    unset = subprocess.run(
        [client, "--vault-id", "prod"], env=env, capture_output=True, text=True, check=False
    )
    assert unset.returncode != 0
    assert unset.stdout == ""
    assert "INVOICING_VAULT_PASSWORD is not set" in unset.stderr
    given = subprocess.run(
        [client, "--vault-id", "prod"],
        env={**env, "INVOICING_VAULT_PASSWORD": "s3cret"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert given.stdout == "s3cret\n"
    assert not list(REPO.glob("inventories/*/*password*")), "no password file next to a vault"


def test_no_role_reaches_a_path_outside_itself() -> None:
    """Paths outside a role come in through variables (service_image_context), and templates
    are named, not reached through a sibling's directory."""
    roles = sorted(p.name for p in (REPO / "roles").iterdir())
    for path in (REPO / "roles").rglob("*"):
        if path.suffix not in {".yml", ".j2"}:
            continue
        text = path.read_text()
        assert "../" not in text, path.relative_to(REPO)
        for role in roles:
            assert f"{role}/templates/" not in text, (path.relative_to(REPO), role)


# Facts roles publish for other roles and stages; every other name a role's tasks register or
# set is internal and carries the __<role>_ prefix.
PUBLISHED_FACTS = {
    "cluster_provider_resolved",
    "cluster_provider_reason",
    "cluster_published_by",
    "cluster_kubeconfig_path",
    "cluster_context_name",
    "cluster_entry_url",
    "cluster_image_target",
    "local_cluster_node_converged",
    "local_cluster_node_count_changed",
    "python_base_image_refs",
    "python_base_image_ref",
    "service_image_refs",
    "local_cluster_node_import",  # not a fact: the input of its import-images entry point
    "local_cluster_node_worker",  # not a fact: the input of its worker entry point, which the
    # rerun check sets per worker to work out what that worker would run
}


def _task_names(tasks: list) -> set[str]:
    names: set[str] = set()
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            names |= _task_names(task.get(key, []))
        if "register" in task:
            names.add(task["register"])
        names |= set(task.get("ansible.builtin.set_fact", {}) or {}) - {"cacheable"}
        if "loop_var" in task.get("loop_control", {}):
            names.add(task["loop_control"]["loop_var"])
        if not any(k.endswith(("include_role", "import_role")) for k in task):
            names |= set(task.get("vars", {}) or {})
    return names


def test_internal_variables_carry_the_double_underscore_role_prefix() -> None:
    for role in sorted((REPO / "roles").iterdir()):
        names: set[str] = set()
        for tasks in [*role.glob("tasks/*.yml"), *role.glob("handlers/*.yml")]:
            names |= _task_names(yaml.safe_load(tasks.read_text()))
        for constants in role.glob("vars/*.yml"):
            if role.name != "local_cluster":  # its vars/ are its sub-roles' inputs
                names |= set(yaml.safe_load(constants.read_text()) or {})
        internal = names - PUBLISHED_FACTS
        assert all(n.startswith(f"__{role.name}_") for n in internal), (
            role.name,
            sorted(n for n in internal if not n.startswith(f"__{role.name}_")),
        )


def _included_roles(tasks: list) -> set[str]:
    names: set[str] = set()
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            names |= _included_roles(task.get(key, []))
        for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
            if key in task:
                names.add(task[key]["name"])
    return names


def test_every_role_declares_the_roles_it_calls() -> None:
    """A role it calls is a dependency (for roles without main tasks, which then run nothing by
    themselves) or named in the meta/main.yml comment that says why it is not one."""
    roles = sorted(p.name for p in (REPO / "roles").iterdir())
    for role in roles:
        meta_text = (REPO / "roles" / role / "meta" / "main.yml").read_text()
        dependencies = {
            d["role"] if isinstance(d, dict) else d
            for d in yaml.safe_load(meta_text).get("dependencies") or []
        }
        called: set[str] = set()
        for tasks in (REPO / "roles" / role / "tasks").glob("*.yml"):
            called |= _included_roles(yaml.safe_load(tasks.read_text())) - {role}
        # A templated name (the cluster role's provider) must name every choice in the comment.
        if any("{{" in name for name in called):
            called = {n for n in called if "{{" not in n} | {
                "minikube",
                "local_cluster",
                "existing_cluster",
            }
        comment = {line for line in meta_text.splitlines() if line.startswith("#   - ")}
        undeclared = {
            name
            for name in called - dependencies
            if not any(f" {name} " in f"{line} " or f" {name}," in line for line in comment)
        }
        assert not undeclared, (role, sorted(undeclared))
