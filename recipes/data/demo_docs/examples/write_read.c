/* Write a 2-D integer dataset with the HDF5 C API, then read it back. */
#include <stdio.h>
#include <hdf5.h>

#define NX 4
#define NY 6

static herr_t write_matrix(const char *path)
{
    int data[NX][NY];
    hsize_t dims[2] = {NX, NY};
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NY; j++)
            data[i][j] = i * NY + j;

    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dset = H5Dcreate2(file, "/matrix", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t status = H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(dset);
    H5Sclose(space);
    H5Fclose(file);
    return status;
}

static herr_t read_matrix(const char *path, int out[NX][NY])
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = H5Dopen2(file, "/matrix", H5P_DEFAULT);
    herr_t status = H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(dset);
    H5Fclose(file);
    return status;
}

int main(void)
{
    int back[NX][NY];
    if (write_matrix("matrix.h5") < 0 || read_matrix("matrix.h5", back) < 0)
        return 1;
    printf("last element: %d\n", back[NX - 1][NY - 1]);
    return 0;
}
