/* Create a chunked, compressed dataset with the HDF5 C API. */
#include <hdf5.h>

#define ROWS 1000
#define COLS 64

static hid_t make_chunked_plist(void)
{
    hsize_t chunk[2] = {100, COLS};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_deflate(dcpl, 4);
    return dcpl;
}

int main(void)
{
    hsize_t dims[2] = {ROWS, COLS};
    hid_t file = H5Fcreate("chunked.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = make_chunked_plist();
    hid_t dset = H5Dcreate2(file, "data", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);

    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    return 0;
}
