// Backend selection for builds without the CUDA backend: asking for a device
// is an error the bindings turn into a ValueError.
#include <stdexcept>

#include "layerparallel/backend.hpp"
#include "layerparallel/device_batch.hpp"
#include "layerparallel/device_layer.hpp"
#include "layerparallel/device_timing.hpp"

#ifndef LP_WITH_CUDA
namespace layerparallel {

bool cuda_built() { return false; }
int cuda_device_count() { return 0; }
std::shared_ptr<Executor> cuda_executor(int) {
  throw std::invalid_argument("device='cuda': this build of layerparallel has no CUDA backend "
                              "(reinstall with -Ccmake.define.LP_CUDA=ON)");
}
std::unique_ptr<DeviceLayer> make_device_layer(Executor&) {
  throw std::invalid_argument("no device layer kernels in a build without CUDA");
}
std::unique_ptr<DeviceBatchLayer> make_device_batch_layer(Executor&) {
  throw std::invalid_argument("no device layer kernels in a build without CUDA");
}
DeviceTiming time_on_device(Executor&, const std::function<void()>&, int) {
  throw std::invalid_argument("no device timing in a build without CUDA");
}

}  // namespace layerparallel
#endif
