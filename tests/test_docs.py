"""The documentation stays true by itself: its links resolve, and config/README.md documents every key."""

import re
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """The anchors a code host gives the headings of a Markdown file."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"#+\s+(.*)", line):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            found.add(text.replace(" ", "-"))
    return found


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_the_documents_exist():
    for name in ("README.md", "LICENSE", "CITATION.cff", "CHANGELOG.md"):
        assert (ROOT / name).is_file(), name
    for name in ("methods", "cluster", "performance", "testing", "outputs"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    broken = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


def test_links_are_checked():
    """The link test sees links, anchors included (a regular expression that matched nothing would pass)."""
    assert "config/README.md" in relative_links(ROOT / "README.md")
    assert "what-the-workflow-refuses-and-why" in anchors(ROOT / "config" / "README.md")


def schema_keys(node: dict, path: tuple = ()) -> list[str]:
    """Every key of the config schema that holds a value, as a dotted path; a formula's name as `F`. A
    model's priors are one key here: `test_every_prior_is_documented` checks their parameters."""
    children = dict(node.get("properties", {}))
    if path and path[-1] == "formulas":
        children = {"F": node["additionalProperties"]}
    if not children or (path and path[-1] == "priors"):
        return [".".join(path)]
    return [key for name, child in children.items() for key in schema_keys(child, (*path, name))]


def generic(key: str) -> str:
    """A model's key as config/README.md may write it for every model: `models.M.sampling`."""
    return re.sub(r"^models\.[^.]+\.", "models.M.", key)


def test_every_config_key_is_documented():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    keys = schema_keys(schema)
    assert {"data.path", "models.no_pooling.priors", "formulas.F.family", "plots.dpi", "selections"} <= set(keys)
    documented = set(re.findall(r"`([^`\s]+)`", (ROOT / "config" / "README.md").read_text(encoding="utf-8")))
    missing = [key for key in keys if key not in documented and generic(key) not in documented]
    assert not missing, f"not documented in config/README.md: {missing}"


def test_every_prior_is_documented():
    """Each model's every parameter has a row of the priors table in config/README.md."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    wanted = {
        (model, parameter)
        for model, entry in schema["properties"]["models"]["properties"].items()
        for parameter in entry["properties"]["priors"]["properties"]
    }
    rows, model = set(), None
    for line in (ROOT / "config" / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            model = cells[0] or model
            rows.add((model, cells[1].split(" ")[0].strip("`")))
    assert not wanted - rows, sorted(wanted - rows)


def test_a_benchmark_rewrites_its_own_table_and_keeps_the_others(tmp_path):
    from runs import markdown_table, write_section

    page = tmp_path / "performance.md"
    write_section("a", "First", "python bench/a.py", markdown_table(["case", "s"], [["x", "1.0"]]), page)
    write_section("b", "Second", "python bench/b.py", markdown_table(["case", "s"], [["y", "2.0"]]), page)
    write_section("a", "First", "python bench/a.py", markdown_table(["case", "s"], [["x", "3.0"]]), page)
    text = page.read_text()
    assert text.startswith("# Performance") and text.count("## First") == 1 and text.count("## Second") == 1
    assert "| x | 3.0 |" in text and "| x | 1.0 |" not in text and "| y | 2.0 |" in text
    assert text.index("## First") < text.index("## Second")
    assert re.search(r"Measured by `python bench/a.py` on .+, \d+ cores.*, \d{4}-\d\d-\d\d\.", text)
    assert "| --- | ---: |" in text  # numbers right-aligned


def test_performance_page_holds_only_benchmark_tables():
    """Every table in docs/performance.md sits in a section a benchmark wrote (none typed by hand)."""
    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    outside = re.sub(r"<!-- benchmark: (\S+) -->.*?<!-- end of benchmark: \1 -->", "", text, flags=re.S)
    assert "|" not in outside and re.search(r"\d", outside) is None, outside
