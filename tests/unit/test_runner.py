from shared.runner import discover_services, service_targets


def _service(root, name, source):
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text(source)


def test_discovers_packages_with_a_service_module(tmp_path):
    _service(tmp_path, "account", "class AccountService:\n    name = 'account'\n")
    _service(tmp_path, "gateway", "class Gateway:\n    name: str = 'gateway'\n")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "util.py").write_text("")
    assert discover_services(tmp_path) == ["account", "gateway"]
    assert discover_services(tmp_path / "missing") == []


def test_names_only_the_classes_that_set_a_service_name(tmp_path):
    _service(
        tmp_path,
        "account",
        "from shared.service import EventSourcedService\n"
        "class Passwords:\n    pass\n"
        "class AccountService(EventSourcedService):\n    name = 'account'\n",
    )
    assert service_targets("account", tmp_path) == ["services.account.service:AccountService"]


def test_falls_back_to_the_module_when_no_class_is_named(tmp_path):
    _service(tmp_path, "odd", "def f(:\n")
    assert service_targets("odd", tmp_path) == ["services.odd.service"]
