"""Every hook is a documented contract: its name says when it runs, its docstring says the rest."""

from __future__ import annotations

import inspect
import re
import types

import pluggy
import pytest

from webapp import hookspecs, templating

# The kind word after ``neighbourly_`` says when a hook runs (STYLE.md, "Hooks").
ALLOWED_NAMES = [
    re.compile(r"^neighbourly_register_[a-z_]+$"),  # startup, app scope
    re.compile(r"^neighbourly_validate_[a-z_]+$"),  # veto before anything is written
    re.compile(r"^neighbourly_collect_[a-z_]+$"),  # contract objects for the core to show or use
    re.compile(r"^neighbourly_tpl_[a-z_]+$"),  # HTML for a named template slot
    re.compile(r"^neighbourly_plugin_(enabled|disabled)$"),  # marketplace switch callbacks
    re.compile(r"^neighbourly_[a-z]+_(recorded|committed|refunded)$"),  # around a transaction
    re.compile(r"^neighbourly_customer_erased$"),  # erasure of personal data
    re.compile(r"^neighbourly_demo_content$"),  # sample rows for the demo street
    re.compile(r"^neighbourly_grant_[a-z_]+$"),  # a command: the plugin owning the thing does it
]
# What the ``Phase:`` of each transactional kind must promise.
PHASE_WORDS = {
    "_recorded": "inside",
    "_refunded": "inside",
    "_committed": "after commit",
    "neighbourly_validate_": "no writes",
}


def spec_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    marker = "neighbourly_spec"
    return {
        name: function
        for name, function in vars(module).items()
        if inspect.isfunction(function) and hasattr(function, marker)
    }


def contract_problems(name: str, function) -> list[str]:
    """Everything wrong with one hook spec; an empty list means it honours the contract."""
    problems = []
    if not any(pattern.match(name) for pattern in ALLOWED_NAMES):
        problems.append(f"{name}: the name does not start with neighbourly_<kind> of an allowed kind")
    doc = inspect.getdoc(function) or ""
    lines = doc.splitlines()
    if not lines or not lines[0].strip():
        problems.append(f"{name}: no one-line summary")
    scope = re.search(r"^Scope: (\w+)", doc, re.M)
    if not scope:
        problems.append(f"{name}: no 'Scope:' line")
    elif scope.group(1) not in ("app", "merchant"):
        problems.append(f"{name}: Scope must be 'app' or 'merchant'")
    phase = re.search(r"^Phase: (.+(?:\n {4}.+)*)", doc, re.M)
    if not phase:
        problems.append(f"{name}: no 'Phase:' line")
    else:
        phase_text = " ".join(phase.group(1).split()).lower()
        for fragment, promise in PHASE_WORDS.items():
            if fragment in name and promise not in phase_text:
                problems.append(f"{name}: its Phase must say '{promise}'")
    parameters = list(inspect.signature(function).parameters)
    for parameter in parameters:
        if f":param {parameter}:" not in doc:
            problems.append(f"{name}: ':param {parameter}:' is missing")
    for documented in re.findall(r":param (\w+):", doc):
        if documented not in parameters:
            problems.append(f"{name}: documents ':param {documented}:' that it does not take")
    if ":returns:" not in doc:
        problems.append(f"{name}: ':returns:' is missing")
    if "request" in parameters:
        problems.append(f"{name}: hooks get domain objects and plain values, never the request")
    if scope and scope.group(1) == "merchant" and parameters[:1] != ["merchant"]:
        problems.append(f"{name}: a merchant-scoped hook takes 'merchant' first")
    return problems


def test_every_hookspec_honours_the_contract():
    specs = spec_functions(hookspecs)
    assert len(specs) >= 15, "the hook specifications were not found"
    problems = [problem for name, function in specs.items() for problem in contract_problems(name, function)]
    assert problems == []


def test_hookspecs_module_holds_only_specs():
    """STYLE.md: hookspecs.py holds every hook spec and nothing else."""
    public = {
        name for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    assert public == set(spec_functions(hookspecs))


def test_the_manager_exposes_exactly_the_documented_specs():
    pm = pluggy.PluginManager("neighbourly")
    pm.add_hookspecs(hookspecs)
    names = {name for name in dir(pm.hook) if name.startswith("neighbourly_")}
    assert names == set(spec_functions(hookspecs))
    for name in names:
        assert getattr(pm.hook, name).spec.function.__doc__ == spec_functions(hookspecs)[name].__doc__


def test_every_template_hook_has_a_slot_and_every_slot_a_hook():
    tpl_hooks = {name.removeprefix("neighbourly_tpl_") for name in spec_functions(hookspecs) if "_tpl_" in name}
    assert tpl_hooks == set(templating.SLOTS) | set(templating.NETWORK_SLOTS)
    assert not set(templating.SLOTS) & set(templating.NETWORK_SLOTS)


# The checker above must be able to fail: feed it specs that break each rule.
hookspec = pluggy.HookspecMarker("neighbourly")


def _bad_specs() -> types.ModuleType:
    module = types.ModuleType("bad_specs")

    @hookspec
    def neighbourly_after_purchase(merchant, purchase):
        """Ambiguous: after the flush or after the commit?

        Scope: merchant.
        Phase: after.

        :param merchant: the merchant.
        :param purchase: the purchase.
        :returns: ``None``.
        """

    @hookspec
    def neighbourly_collect_things(merchant, membership):
        """Collect things.

        Scope: merchant.
        Phase: page rendering.

        :param merchant: the merchant.
        :returns: a list.
        """

    @hookspec
    def neighbourly_gift_committed(purchase, merchant):
        """Do it after commit.

        Scope: merchant.
        Phase: inside the transaction.

        :param purchase: the purchase.
        :param merchant: the merchant.
        """

    @hookspec
    def neighbourly_tpl_banner(request):
        """A banner.

        Phase: rendering.

        :param request: the request.
        :param user: someone.
        :returns: HTML.
        """

    for function in (
        neighbourly_after_purchase, neighbourly_collect_things, neighbourly_gift_committed,
        neighbourly_tpl_banner,
    ):
        setattr(module, function.__name__, function)
    return module


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("neighbourly_after_purchase", "allowed kind"),
        ("neighbourly_collect_things", "':param membership:' is missing"),
        ("neighbourly_gift_committed", "its Phase must say 'after commit'"),
        ("neighbourly_gift_committed", "':returns:' is missing"),
        ("neighbourly_gift_committed", "takes 'merchant' first"),
        ("neighbourly_tpl_banner", "no 'Scope:' line"),
        ("neighbourly_tpl_banner", "':param user:' that it does not take"),
        ("neighbourly_tpl_banner", "never the request"),
    ],
)
def test_the_checker_catches_broken_specs(name, expected):
    function = spec_functions(_bad_specs())[name]
    assert any(expected in problem for problem in contract_problems(name, function))


def test_the_hook_reference_in_docs_matches_the_specifications():
    from webapp import hookref

    written = hookref.REFERENCE_PATH.read_text(encoding="utf-8")
    assert written == hookref.render_reference(), "docs/hooks.md is stale: run `flask hooks-reference`"
    for name in spec_functions(hookspecs):
        assert f"### `{name}`" in written
