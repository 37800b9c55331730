"""Sample HDF5 files the HDF5 tools run against: groups, datasets, attributes, chunked/compressed layouts.

The files are deterministic (fixed seed), a few hundred KB in all, and rebuilt on demand by
:func:`build_fixtures`. :func:`inventory` lists what a file holds, for prompts and argument hints.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

FIXTURE_FILES = ("climate.h5", "experiment.h5")
_VERSION = 1  # bump when the layout changes so cached copies are rebuilt


def _climate(f, rng) -> None:
    import numpy as np

    f.attrs["title"] = "Synthetic hourly climate observations"
    f.attrs["institution"] = "synthrun test network"
    f.attrs["conventions"] = "CF-1.8"
    stations = f.create_group("stations")
    stations.attrs["count"] = 8
    stations.create_dataset("ids", data=np.arange(100, 108, dtype="int32"))
    names = np.array([f"station_{c}" for c in "ABCDEFGH"], dtype="S16")
    stations.create_dataset("names", data=names)
    coords = stations.create_dataset("coordinates", data=rng.uniform(-60, 60, size=(8, 2)))
    coords.attrs["units"] = "degrees"
    coords.attrs["columns"] = "latitude,longitude"
    meas = f.create_group("measurements")
    meas.attrs["frequency"] = "hourly"
    meas.attrs["start"] = "2024-01-01T00:00:00Z"
    hours = np.arange(720)
    base = 12 + 8 * np.sin(2 * np.pi * hours / 24)
    temp = (base[None, :] + rng.normal(0, 1.5, size=(8, 720))).astype("float32")
    t = meas.create_dataset("temperature", data=temp, chunks=(1, 240), compression="gzip", compression_opts=4)
    t.attrs["units"] = "degC"
    t.attrs["long_name"] = "air temperature at 2 m"
    t.attrs["valid_range"] = np.array([-50.0, 60.0])
    p = meas.create_dataset("pressure", data=(1013 + rng.normal(0, 6, size=(8, 720))).astype("float32"))
    p.attrs["units"] = "hPa"
    h = meas.create_dataset("humidity", data=rng.uniform(20, 100, size=(8, 720)).astype("float32"),
                            chunks=(2, 8), compression="lzf")
    h.attrs["units"] = "percent"
    meta = f.create_group("metadata")
    meta.attrs["version"] = 3
    cal = meta.create_dataset("calibration", data=rng.normal(1.0, 0.01, size=8))
    cal.attrs["method"] = "two-point"


def _experiment(f, rng) -> None:
    import numpy as np

    f.attrs["experiment"] = "beamline-7 diffraction"
    f.attrs["operator"] = "synthrun"
    for run, frames in (("run_001", 12), ("run_002", 6)):
        g = f.create_group(run)
        g.attrs["started"] = f"2024-03-0{1 if run == 'run_001' else 2}T09:00:00Z"
        g.attrs["temperature_K"] = 295.0 if run == "run_001" else 77.0
        img = g.create_dataset("images", data=rng.integers(0, 4096, size=(frames, 32, 32), dtype="uint16"),
                               chunks=(1, 32, 32), compression="gzip", compression_opts=6)
        img.attrs["units"] = "counts"
        spec = g.create_dataset("spectra", data=rng.normal(0, 1, size=(frames, 256)),
                                chunks=(4, 256), compression="gzip", shuffle=True)
        spec.attrs["units"] = "arbitrary"
        spec.attrs["wavelength_nm"] = np.linspace(400, 700, 4)
        g.create_dataset("timestamps", data=np.arange(frames, dtype="float64") * 0.5)
    cal = f.create_group("calibration")
    cal.create_dataset("dark_frame", data=rng.normal(100, 3, size=(32, 32)).astype("float32"))
    gain = cal.create_dataset("gain", data=rng.normal(1.2, 0.05, size=(32, 32)).astype("float32"))
    gain.attrs["units"] = "e-/ADU"


_BUILDERS = {"climate.h5": _climate, "experiment.h5": _experiment}


def build_fixtures(folder: str | Path, force: bool = False) -> dict[str, Path]:
    """Create the sample files in ``folder`` (kept when already built) and return name -> path."""
    import h5py
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / f".fixtures-v{_VERSION}"
    out = {}
    for i, (name, builder) in enumerate(_BUILDERS.items()):
        path = folder / name
        out[name] = path
        if path.is_file() and stamp.is_file() and not force:
            continue
        tmp = path.with_suffix(".tmp")
        with h5py.File(tmp, "w", track_order=True) as f:
            builder(f, np.random.default_rng(1234 + i))
        tmp.replace(path)
    stamp.touch()
    return out


@lru_cache(maxsize=16)
def _inventory(path: str, mtime: float) -> dict[str, Any]:
    import h5py

    groups: list[str] = ["/"]
    datasets: dict[str, dict[str, Any]] = {}
    attributes: dict[str, list[str]] = {}
    with h5py.File(path, "r") as f:
        attributes["/"] = list(f.attrs.keys())

        def visit(name: str, obj) -> None:
            full = "/" + name
            attributes[full] = list(obj.attrs.keys())
            if isinstance(obj, h5py.Dataset):
                datasets[full] = {"shape": list(obj.shape), "dtype": str(obj.dtype),
                                  "chunks": list(obj.chunks) if obj.chunks else None,
                                  "compression": obj.compression, "numeric": obj.dtype.kind in "iuf"}
            else:
                groups.append(full)

        f.visititems(visit)
    return {"file": Path(path).name, "groups": groups, "datasets": datasets, "attributes": attributes}


def inventory(path: str | Path) -> dict[str, Any]:
    """What a file holds: ``groups``, ``datasets`` (path -> shape, dtype, chunks, compression), ``attributes``."""
    p = Path(path)
    return _inventory(str(p.resolve()), p.stat().st_mtime)


def describe(path: str | Path) -> str:
    """A few lines describing a file, for prompts."""
    inv = inventory(path)
    lines = [f"File {inv['file']}:"]
    for g in inv["groups"]:
        attrs = inv["attributes"].get(g) or []
        lines.append(f"  group {g}" + (f" (attributes: {', '.join(attrs)})" if attrs else ""))
    for d, info in inv["datasets"].items():
        attrs = inv["attributes"].get(d) or []
        lines.append(f"  dataset {d} shape={info['shape']} dtype={info['dtype']}"
                     + (f" (attributes: {', '.join(attrs)})" if attrs else ""))
    return "\n".join(lines)
