"""A permanent fuzz suite (issue 15): hypothesis generates malformed targets (JSON, CSV),
design JSON, CSV batches, data manifests and model folders; every one must give exit 2, exactly
one line of output (``error: ...``), no traceback and no half-written file.

Every generated input is invalid by construction (a valid one would start a real design or
training run), and the examples are bounded (the whole file runs in well under a minute).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from metainv.cli import app
from metainv.nn.artifacts import default_model_folder

runner = CliRunner()
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

# JSON values of every kind (bounded size)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


def assert_one_line_refusal(result, folder: Path | None = None) -> None:
    """Exit 2, exactly one non-empty output line starting ``error:``, no traceback, no
    temporary or half-written file left in ``folder``."""
    text = result.output
    lines = [line for line in text.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, text, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text
    if folder is not None and folder.exists():
        assert not list(folder.rglob("*.tmp")), list(folder.rglob("*"))
        document = folder / "designs.json"
        if document.exists():
            json.loads(document.read_text())


def fresh(tmp_path: Path, name: str) -> Path:
    """An empty scratch folder (hypothesis reuses ``tmp_path`` across examples)."""
    path = tmp_path / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------- targets


def _invalid_c(value) -> bool:
    """True unless ``value`` could be a 6x6 or 21-number stiffness."""
    if isinstance(value, list) and len(value) == 21:
        return not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if isinstance(value, list) and len(value) == 6:
        return not all(isinstance(row, list) and len(row) == 6 for row in value)
    return True


target_documents = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.dictionaries(
        st.sampled_from(["C", "C21", "unit", "name", "x"]), json_values, max_size=3
    ).filter(lambda d: all(_invalid_c(d[k]) for k in ("C", "C21") if k in d)),
    st.builds(
        lambda n, bad: {"C": [[bad] * 6 for _ in range(6)] if n == 6 else [[1.0] * n] * n},
        st.integers(0, 9),
        st.sampled_from(["x", None, [], {}, True]),
    ),
)


@FUZZ
@given(document=target_documents)
def test_fuzz_json_targets(tmp_path, document):
    folder = fresh(tmp_path, "case")
    path = folder / "target.json"
    path.write_text(json.dumps(document))
    out = folder / "out"
    assert_one_line_refusal(runner.invoke(app, ["design", str(path), "--out", str(out)]), out)


@FUZZ
@given(data=st.binary(min_size=1, max_size=200))
def test_fuzz_target_bytes(tmp_path, data):
    # not UTF-8 (or not a target at all): refused, never decoded into a design run
    try:
        text = data.decode("utf-8")
        assume(not text.strip().startswith(("{", "[")) and "," not in text and "\n" not in text)
    except UnicodeDecodeError:
        pass
    folder = fresh(tmp_path, "case")
    path = folder / "target.json"
    path.write_bytes(data)
    out = folder / "out"
    assert_one_line_refusal(runner.invoke(app, ["design", str(path), "--out", str(out)]), out)


# --------------------------------------------------------------------------- CSV batches

bad_cells = st.one_of(
    st.sampled_from(["x", "nan", "inf", "1e999", "", "--", "1,5", '"', "0x10", "NaN"]),
    st.text(alphabet="abc;: \t", min_size=1, max_size=4),
)


@st.composite
def bad_csv(draw) -> str:
    """CSV text whose every row is unusable (wrong count of numbers or a non-number)."""
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            count = draw(st.integers(1, 40).filter(lambda n: n not in (21, 36)))
            numbers = draw(st.lists(st.floats(-1e3, 1e3), min_size=count, max_size=count))
            rows.append(",".join(repr(x) for x in numbers))
        else:
            numbers = [repr(1.0 + i) for i in range(21)]
            numbers[draw(st.integers(0, 20))] = draw(bad_cells)
            rows.append(",".join(numbers))
    return "\n".join(rows) + "\n"


@FUZZ
@given(text=bad_csv())
def test_fuzz_csv_batches(tmp_path, text):
    folder = fresh(tmp_path, "case")
    path = folder / "targets.csv"
    path.write_text(text)
    out = folder / "out"
    assert_one_line_refusal(runner.invoke(app, ["design", str(path), "--out", str(out)]), out)


# ---------------------------------------------------------------------------- design JSON

VALID = {
    "spinodoid": {"family": "spinodoid", "relative_density": 0.5, "theta": [30, 30, 0]},
    "tpms": {"family": "tpms", "surface": "gyroid", "variant": "sheet", "relative_density": 0.3},
    "truss": {
        "family": "truss",
        "topology": [{"cell": 2, "tessellation": 1}] * 3,
        "relative_density": 0.05,
        "U": [1, 1, 1],
        "V": [1, 1, 1],
        "R1": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "R2": {"angle": 0.3, "axis": [0, 0, 1]},
    },
}
REQUIRED = {
    "spinodoid": ["relative_density", "theta"],
    "tpms": ["surface", "relative_density"],
    "truss": ["topology", "relative_density", "U", "R1"],
}
bad_values = st.one_of(
    st.text(max_size=5),
    st.none(),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    st.sampled_from([-1.0, 1e300, -1e300, 7, [], [[[]]]]),
)


@st.composite
def bad_designs(draw):
    kind = draw(st.sampled_from(["mutate", "drop", "family", "top"]))
    family = draw(st.sampled_from(sorted(VALID)))
    design = json.loads(json.dumps(VALID[family]))
    if kind == "mutate":
        design[draw(st.sampled_from(REQUIRED[family]))] = draw(bad_values)
    elif kind == "drop":
        del design[draw(st.sampled_from(REQUIRED[family]))]
    elif kind == "family":
        design["family"] = draw(
            json_values.filter(lambda v: not (isinstance(v, str) and v in VALID))
        )
    else:
        return draw(json_values.filter(lambda v: not isinstance(v, dict)))
    return design


@FUZZ
@given(design=bad_designs())
def test_fuzz_design_json(tmp_path, design):
    folder = fresh(tmp_path, "case")
    path = folder / "design.json"
    path.write_text(json.dumps(design))
    assert_one_line_refusal(runner.invoke(app, ["homogenize", str(path)]), folder)
    out = folder / "block.stl"
    assert_one_line_refusal(runner.invoke(app, ["export", str(path), "--out", str(out)]), folder)
    assert not out.exists()


# ------------------------------------------------------------------------- data manifests


def _not_count(value) -> bool:
    return not (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


@st.composite
def manifest_damage(draw):
    """A function breaking one validated field of a complete manifest."""
    field = draw(st.sampled_from(["file", "sha256", "rows", "index", "shards", "n_rows"]))
    if field == "file":
        value = draw(
            st.one_of(
                st.sampled_from(["../other/shard-00005.parquet", "/etc/passwd", "a/b.parquet"]),
                st.text(max_size=8).filter(lambda t: not t.endswith(".parquet")),
                scalars.filter(lambda v: not isinstance(v, str)),
            )
        )
    elif field == "sha256":
        value = draw(json_values.filter(lambda v: not (isinstance(v, str) and len(v) == 64)))
    elif field in ("rows", "index"):
        value = draw(json_values.filter(_not_count))
    elif field == "shards":
        value = draw(json_values.filter(lambda v: not isinstance(v, list)))
    else:
        value = draw(st.one_of(json_values.filter(_not_count), st.integers(10**6, 10**9)))
    shard = draw(st.integers(0, 10))

    return ManifestDamage(field, value, shard)


class ManifestDamage:
    """Set ``field`` (of the manifest, or of shard record ``shard``) to ``value``."""

    def __init__(self, field: str, value, shard: int) -> None:
        self.field, self.value, self.shard = field, value, shard

    def __call__(self, manifest: dict) -> None:
        if self.field in ("shards", "n_rows"):
            manifest[self.field] = self.value
        else:
            records = manifest["shards"]
            records[self.shard % len(records)][self.field] = self.value

    def __repr__(self) -> str:
        return f"ManifestDamage({self.field!r}, {self.value!r}, shard={self.shard})"


@FUZZ
@given(damage=manifest_damage())
def test_fuzz_data_manifests(tmp_path, truss_dataset, damage):
    folder = fresh(tmp_path, "case")
    data = folder / "data"
    shutil.copytree(truss_dataset, data)
    manifest = json.loads((data / "dataset.json").read_text())
    damage(manifest)
    (data / "dataset.json").write_text(json.dumps(manifest))
    out = folder / "model"
    result = runner.invoke(app, ["train", "truss", "--data", str(data), "--out", str(out)])
    assert_one_line_refusal(result, folder)
    assert not (out / "model.safetensors").exists()


# --------------------------------------------------------------------------- model folders

MODEL_FILES = ("model.safetensors", "config.json", "manifest.json")


@st.composite
def model_damage(draw):
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "config", "manifest"]))
    if kind == "truncate":
        return kind, draw(st.floats(0.0, 0.999))
    if kind == "flip":
        name = draw(st.sampled_from(["model.safetensors", "library.safetensors"]))
        return kind, (name, draw(st.floats(0.0, 0.999)), draw(st.integers(1, 255)))
    if kind == "delete":
        return kind, draw(st.sampled_from(MODEL_FILES))
    if kind == "config":
        key = draw(st.sampled_from(["forward", "inverse", "family"]))
        return kind, (key, draw(json_values))
    return kind, ("weights_sha256", draw(json_values))


def damaged_model(folder: Path, kind: str, detail) -> None:
    source = default_model_folder("truss")
    folder.mkdir()
    for path in source.iterdir():
        os.symlink(path, folder / path.name)

    def own(name: str) -> Path:
        (folder / name).unlink()
        shutil.copyfile(source / name, folder / name)
        return folder / name

    if kind == "truncate":
        path = own("model.safetensors")
        data = path.read_bytes()
        path.write_bytes(data[: int(detail * len(data))])
    elif kind == "flip":
        name, where, mask = detail
        path = own(name)
        data = bytearray(path.read_bytes())
        data[int(where * len(data))] ^= mask
        path.write_bytes(bytes(data))
    elif kind == "delete":
        (folder / detail).unlink()
    elif kind == "config":
        key, value = detail
        path = own("config.json")
        config = json.loads(path.read_text())
        assume(config.get(key) != value and not (key == "family" and value == "truss"))
        config[key] = value
        path.write_text(json.dumps(config))
    else:
        key, value = detail
        path = own("manifest.json")
        manifest = json.loads(path.read_text())
        assume(manifest.get(key) != value)
        manifest[key] = value
        path.write_text(json.dumps(manifest))


@settings(FUZZ, max_examples=15)
@given(damage=model_damage())
def test_fuzz_model_folders(tmp_path, damage):
    folder = fresh(tmp_path, "case")
    model = folder / "model"
    damaged_model(model, *damage)
    out = folder / "out"
    args = ["design", "bone3", "--model", str(model), "--samples", "20", "--out", str(out)]
    assert_one_line_refusal(runner.invoke(app, args), out)
