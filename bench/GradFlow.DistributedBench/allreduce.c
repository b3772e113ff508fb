/* Open MPI's own allreduce figure for bench/distributed.sh: the same loop as GradFlow.DistributedBench's "allreduce"
   mode (in-place float MPI_Allreduce, about 256 MB per block, best of 5 blocks), in C. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long min = argc > 1 ? atol(argv[1]) : 4096, max = argc > 2 ? atol(argv[2]) : 64L << 20;
    for (long bytes = min; bytes <= max; bytes *= 4) {
        long n = bytes / 4;
        float *buffer = malloc(bytes);
        for (long i = 0; i < n; i++) buffer[i] = 1.0f / size;
        long iterations = (256L << 20) / bytes;
        if (iterations < 5) iterations = 5;
        if (iterations > 1000) iterations = 1000;
        MPI_Allreduce(MPI_IN_PLACE, buffer, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double best = 1e30;
        for (int block = 0; block < 5; block++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            for (long i = 0; i < iterations; i++)
                MPI_Allreduce(MPI_IN_PLACE, buffer, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t = (MPI_Wtime() - start) / iterations;
            if (t < best) best = t;
        }
        double bus = 2.0 * (size - 1) / size * bytes / best;
        if (rank == 0) printf("allreduce impl=openmpi ranks=%d bytes=%ld us=%.1f bus_GBps=%.3f\n", size, bytes, best * 1e6, bus / 1e9);
        free(buffer);
    }
    MPI_Finalize();
    return 0;
}
