// Shared scaffolding of the C++ tests: MPI start/stop, the communicator, the
// executors to test on (every backend available; LP_REQUIRE_GPU=1 makes a
// missing CUDA device a failure), and failure counting agreed over the ranks.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "layerparallel/backend.hpp"
#include "layerparallel/comm.hpp"

#ifdef LP_WITH_MPI
#include <mpi.h>
#endif

namespace lptest {

struct Session {
  layerparallel::Comm comm;
  std::vector<std::shared_ptr<layerparallel::Executor>> executors;
  int failures = 0;

  Session(int argc, char** argv) {
#ifdef LP_WITH_MPI
    MPI_Init(&argc, &argv);
    comm = layerparallel::Comm::from_fortran(MPI_Comm_c2f(MPI_COMM_WORLD));
#else
    (void)argc, (void)argv;
#endif
    executors.emplace_back(&layerparallel::cpu_executor(), [](layerparallel::Executor*) {});
    if (layerparallel::cuda_device_count() > 0) {
      executors.push_back(layerparallel::cuda_executor(0));
    } else {
      const char* req = std::getenv("LP_REQUIRE_GPU");
      if (req && std::string(req) == "1") {
        fail("LP_REQUIRE_GPU=1 but no CUDA device is usable (built with CUDA: " +
             std::string(layerparallel::cuda_built() ? "yes" : "no") + ")");
      } else if (comm.rank() == 0) {
        std::printf("SKIP cuda backend: %s\n",
                    layerparallel::cuda_built() ? "no CUDA device visible" : "not built");
      }
    }
  }
  void fail(const std::string& what) {
    ++failures;
    std::fprintf(stderr, "FAIL [rank %d] %s\n", comm.rank(), what.c_str());
  }
  void expect(bool ok, const std::string& what) {
    if (!ok) fail(what);
  }
  // The exit status, the same on every rank.
  int finish() {
    const double any = comm.allreduce_max(failures > 0 ? 1.0 : 0.0);
    if (comm.rank() == 0) std::printf(any > 0 ? "FAILED\n" : "OK\n");
    executors.clear();
#ifdef LP_WITH_MPI
    MPI_Finalize();
#endif
    return any > 0 ? 1 : 0;
  }
};

}  // namespace lptest
