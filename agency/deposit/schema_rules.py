"""Deposit rules our XSD 1.0 schemas cannot state: Crossref writes them as XSD 1.1 assertions.

libxml2 validates XSD 1.0 only, so these run in Python on each body item while the
streaming validator passes it (after libxml2 has validated the item), and a broken
rule refuses the whole file as a schema error does, with line, element path and
message. Today: the 5.5.0 contributor roles (schemas/README.md lists them).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from lxml import etree

# The namespaces whose Crossref schema asserts the contributor-role rules.
ROLE_RULE_NAMESPACES = frozenset({"http://www.crossref.org/schema/5.5.0"})

CROSSREF_ROLES = frozenset({
    "author", "editor", "chair", "reviewer", "review-assistant", "stats-reviewer",
    "reviewer-external", "reader", "translator", "corresponding-author",
})
CREDIT_ROLES = frozenset({
    "conceptualization", "data-curation", "formal-analysis", "funding-acquisition", "investigation",
    "methodology", "project-administration", "resources", "software", "supervision", "validation",
    "visualization", "writing-original-draft", "writing-review-editing",
})
ROLE_VOCABULARIES = {"crossref": CROSSREF_ROLES, "credit": CREDIT_ROLES}
DEFAULT_VOCABULARY = "crossref"

# Enough to act on; a file breaking the rule a million times is not reported a million times.
MAX_REPORTED_BREAKS = 200

BodyItemSink = Callable[[etree._Element, object], None]


class RuleBreak(NamedTuple):
    """Fields in the order of validation.XmlIssue, so that XmlIssue(*rule_break) is the refusal's error."""

    message: str
    line: int | None
    column: int | None
    path: str


class ContributorRoleRules:
    """5.5.0: every person_name has a contributor_role or a <role>, and every role is a known one."""

    def __init__(self, namespace: str) -> None:
        self.role_tag = f"{{{namespace}}}role"
        # Only the offending elements reach Python: libxml2's XPath picks them out.
        names = {"c": namespace}
        self._roleless_people = etree.XPath(
            "descendant::c:person_name[not(@contributor_role) and not(c:role)]", namespaces=names)
        self._unknown_roles = etree.XPath(f"descendant::c:role[not({_KNOWN_ROLE})]", namespaces=names)
        self.breaks: list[RuleBreak] = []
        self._seen_items: dict[str, int] = {}

    @classmethod
    def for_namespace(cls, namespace: str) -> ContributorRoleRules | None:
        """The rules for a deposit in ``namespace``, or None when its schema asserts none."""
        return cls(namespace) if namespace in ROLE_RULE_NAMESPACES else None

    def watching(self, sink: BodyItemSink | None) -> BodyItemSink:
        """A body-item sink that checks each item, then hands it on to ``sink`` (if any)."""
        def check_then_pass(body_item: etree._Element, head) -> None:
            self.check(body_item)
            if sink is not None:
                sink(body_item, head)
        return check_then_pass

    def check(self, body_item: etree._Element) -> None:
        """Record every rule ``body_item`` breaks (up to MAX_REPORTED_BREAKS in all)."""
        name = etree.QName(body_item).localname
        position = self._seen_items[name] = self._seen_items.get(name, 0) + 1
        offenders = self._roleless_people(body_item) + self._unknown_roles(body_item)
        if not offenders:
            return
        item_path = f"/doi_batch/body/{name}[{position}]"
        for element in sorted(offenders, key=lambda e: e.sourceline or 0):
            if len(self.breaks) >= MAX_REPORTED_BREAKS:
                return
            problem = _role_problem(element) if element.tag == self.role_tag else _ROLELESS_PERSON
            if problem:
                self.breaks.append(RuleBreak(problem, element.sourceline, None,
                                             item_path + _path_below(body_item, element)))


_ROLELESS_PERSON = ("person_name has neither a contributor_role attribute nor a <role> element: "
                    "the 5.5.0 schema requires one of them.")


def _known_role_xpath() -> str:
    """An XPath test true for a <role> whose vocab and type the 5.5.0 schema knows (see _role_problem)."""
    def type_in(values: frozenset[str]) -> str:
        return " or ".join(f"normalize-space(@type)='{value}'" for value in sorted(values))
    tests = []
    for vocabulary, known in ROLE_VOCABULARIES.items():
        vocab_test = f"normalize-space(@vocab)='{vocabulary}'"
        if vocabulary == DEFAULT_VOCABULARY:
            vocab_test = f"not(@vocab) or @vocab='' or {vocab_test}"
        tests.append(f"(({vocab_test}) and ({type_in(known)}))")
    return " or ".join(tests)


_KNOWN_ROLE = _known_role_xpath()


def _role_problem(role: etree._Element) -> str | None:
    vocabulary = " ".join((role.get("vocab") or DEFAULT_VOCABULARY).split())
    known = ROLE_VOCABULARIES.get(vocabulary)
    if known is None:
        return (f"role vocab {vocabulary!r} is not one the 5.5.0 schema knows: "
                f"use {' or '.join(sorted(ROLE_VOCABULARIES))}.")
    role_type = " ".join((role.get("type") or "").split())
    if role_type not in known:
        return (f"role type {role_type!r} is not a {vocabulary} role the 5.5.0 schema knows: "
                f"use one of {', '.join(sorted(known))}.")
    return None


def _path_below(top: etree._Element, element: etree._Element) -> str:
    """``/contributors/person_name[2]`` from ``top`` down to ``element`` (positions only where names repeat)."""
    steps = []
    node = element
    while node is not None and node is not top:
        parent = node.getparent()
        name = etree.QName(node).localname
        same = [sibling for sibling in parent if sibling.tag == node.tag]
        steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "".join("/" + step for step in reversed(steps))
