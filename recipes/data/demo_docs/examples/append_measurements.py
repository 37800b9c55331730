"""Append sensor readings to a resizable, compressed HDF5 dataset with h5py."""

import h5py
import numpy as np


def open_log(path, n_channels):
    """Open (or create) a file holding an extendable 2-D dataset of readings."""
    f = h5py.File(path, "a")
    if "readings" not in f:
        f.create_dataset(
            "readings",
            shape=(0, n_channels),
            maxshape=(None, n_channels),  # unlimited rows
            chunks=(1024, n_channels),
            dtype="f4",
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        f["readings"].attrs["units"] = "volt"
    return f


def append_rows(dset, rows):
    """Grow the dataset along axis 0 and write the new rows at the end."""
    rows = np.asarray(rows, dtype=dset.dtype)
    start = dset.shape[0]
    dset.resize(start + rows.shape[0], axis=0)
    dset[start:] = rows
    return dset.shape[0]


if __name__ == "__main__":
    with open_log("log.h5", n_channels=4) as f:
        total = append_rows(f["readings"], np.random.rand(100, 4))
        print(f"{total} rows, chunks {f['readings'].chunks}, units {f['readings'].attrs['units']}")
