"""Source dependencies of workflow scripts, the basis of rerun-on-module-edit."""

import pytest

from otgap.deps import source_dependencies

from .conftest import REPO


def make_tree(root):
    files = {
        "src/otgap/__init__.py": "",
        "src/otgap/pkg/__init__.py": "from .a import f\n",
        "src/otgap/pkg/a.py": "from . import b\nfrom ..util import g\n",
        "src/otgap/pkg/b.py": "import numpy\n",
        "src/otgap/util.py": "",
        "src/otgap/reg.py": "TABLE = {'x': 'otgap.plugins.x:X'}\nNOTE = 'otgap.unused'\n",
        "src/otgap/plugins/__init__.py": "",
        "src/otgap/plugins/x.py": "",
        "src/otgap/unused.py": "",
        "scripts/s1.py": "from otgap.pkg import f\n",
        "scripts/s2.py": "import otgap.reg\n",
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_transitive_relative_and_registry_imports(tmp_path):
    make_tree(tmp_path)
    assert source_dependencies(tmp_path, "scripts/s1.py") == [
        "src/otgap/__init__.py",
        "src/otgap/pkg/__init__.py",
        "src/otgap/pkg/a.py",
        "src/otgap/pkg/b.py",
        "src/otgap/util.py",
    ]
    deps = source_dependencies(tmp_path, "scripts/s2.py")
    assert "src/otgap/plugins/x.py" in deps and "src/otgap/unused.py" not in deps
    assert "src/otgap/plugins/x.py" not in source_dependencies(
        tmp_path, "scripts/s2.py", follow_registries=False
    )


def test_bad_roots(tmp_path):
    make_tree(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        source_dependencies(tmp_path, "scripts/missing.py")
    with pytest.raises(ValueError, match="neither a script nor an otgap module"):
        source_dependencies(tmp_path, "otgap.nothing")


def test_real_scripts_separate_the_stages():
    """The FHN data scripts do not depend on the curvature engine, and EoS training does."""
    fhn = source_dependencies(REPO, "scripts/fhn_data.py")
    eos = source_dependencies(REPO, "scripts/eos_train.py")
    assert "src/otgap/data/masks.py" in fhn and not any("curvature" in f for f in fhn)
    assert "src/otgap/curvature/lanczos.py" in eos and "src/otgap/data/masks.py" not in eos
