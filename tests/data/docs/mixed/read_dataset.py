"""Read a slice of a dataset and print its attributes."""

import h5py


def read_rows(path, name, start, stop):
    """Return rows start:stop of dataset `name` in the file at `path`."""
    with h5py.File(path, "r") as f:
        return f[name][start:stop]


class AttributeDumper:
    """Print the attributes of every object in a file."""

    def __init__(self, path):
        self.path = path

    def dump(self):
        with h5py.File(self.path, "r") as f:
            f.visititems(lambda name, obj: print(name, dict(obj.attrs)))


if __name__ == "__main__":
    print(read_rows("data.h5", "temperature", 0, 10))
