"""No import cycle between stethoscope's feature packages (tools/import_cycles.py)."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "import_cycles.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("import_cycles", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tool_finds_a_cycle():
    tool = load_tool()
    edges = {"a": {"b": "a.x -> b.y"}, "b": {"c": "b.y -> c.z", "a": "b.y -> a.x"}}

    assert tool.cycles(edges) == [["a", "b"]]
    assert "a.x -> b.y" in tool.describe(["a", "b"], edges)


def test_relative_imports_are_resolved():
    tool = load_tool()
    views = tool.ROOT / "ingest" / "views.py"

    assert "stethoscope.ingest.admission" in tool.imported(views)
    assert tool.feature("stethoscope.ingest.admission") == "ingest"
    assert tool.feature("stethoscope.db") is None


def test_no_cycle_between_feature_packages():
    tool = load_tool()
    edges = tool.package_imports()

    found = [tool.describe(cycle, edges) for cycle in tool.cycles(edges)]
    assert not found, (
        "imports must flow downward (a helper two features share moves below "
        "both); cycles:\n" + "\n".join(found)
    )
