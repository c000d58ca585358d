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
template <class T>
std::unique_ptr<BasicDeviceLayer<T>> make_device_layer(Executor&) {
  throw std::invalid_argument("no device layer kernels in a build without CUDA");
}
template std::unique_ptr<BasicDeviceLayer<float>> make_device_layer<float>(Executor&);
template std::unique_ptr<BasicDeviceLayer<double>> make_device_layer<double>(Executor&);
template <class T>
std::unique_ptr<BasicDeviceBatchLayer<T>> make_device_batch_layer(Executor&) {
  throw std::invalid_argument("no device layer kernels in a build without CUDA");
}
template std::unique_ptr<BasicDeviceBatchLayer<float>> make_device_batch_layer<float>(Executor&);
template std::unique_ptr<BasicDeviceBatchLayer<double>> make_device_batch_layer<double>(Executor&);
DeviceTiming time_on_device(Executor&, const std::function<void()>&, int) {
  throw std::invalid_argument("no device timing in a build without CUDA");
}

}  // namespace layerparallel
#endif
