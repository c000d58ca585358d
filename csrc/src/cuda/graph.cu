// Serial chains as CUDA graphs: a sequence of launches that repeats with the
// same pointers (the serial forward or adjoint sweep of a training run) is
// recorded once by stream capture and then replayed with one cudaGraphLaunch,
// so its cost is the device's, not the host's launch latency per layer.
// The first sighting of a key runs normally (scratch buffers are allocated
// then, outside any capture); the second records; later ones replay.
#include "cuda_executor.cuh"

namespace layerparallel {

namespace cuda {

namespace {
// Recordings kept per executor; more distinct keys than this (e.g. ever-new
// batch sizes) drop them all rather than grow without bound.
constexpr std::size_t kMaxRecordings = 32;
}  // namespace

bool CudaExecutor::record_or_replay(std::uint64_t key, const std::function<void()>& work) {
  activate();
  if (recordings_.size() >= kMaxRecordings && recordings_.count(key) == 0) {
    synchronize();
    for (auto& r : recordings_)
      if (r.second.exec) cudaGraphExecDestroy(r.second.exec);
    recordings_.clear();
  }
  Recording& rec = recordings_[key];
  if (rec.exec) {
    check(cudaGraphLaunch(rec.exec, stream_), "cudaGraphLaunch");
    return false;
  }
  if (rec.failed || ++rec.seen < 2) {
    work();
    return true;
  }
  // Record. Anything the capture cannot hold (a synchronization, an
  // allocation) invalidates it; then this key runs its work from now on.
  cudaGraph_t graph = nullptr;
  check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  bool captured = true;
  try {
    work();
  } catch (const std::exception&) {
    captured = false;
  }
  const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
  if (end != cudaSuccess || graph == nullptr) captured = false;
  if (captured) {
    cudaGraphExec_t exec = nullptr;
    if (cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess) {
      rec.exec = exec;
    } else {
      captured = false;
    }
  }
  if (graph) cudaGraphDestroy(graph);
  if (!captured) {
    cudaGetLastError();  // clear the capture's error
    rec.failed = true;
    work();  // the recorded work never ran: run it
    return true;
  }
  check(cudaGraphLaunch(rec.exec, stream_), "cudaGraphLaunch");
  return true;
}

}  // namespace cuda

}  // namespace layerparallel
