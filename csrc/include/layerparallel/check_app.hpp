// A checker of the App contract (app.hpp): deterministic steps, input left
// untouched, concurrent steps and batched steps (step_batch) giving the same
// bits as serial ones.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "app.hpp"

namespace layerparallel {

struct StepCall {
  int level;
  index_t from, to;
};

// Runs each step in `calls` from the host state `in` (state_size() entries)
// on the app's executor: twice serially (determinism, input untouched), then,
// if the app allows concurrent steps, all at once on the core's threads;
// finally the calls of each level and stride together through step_batch.
// Returns one line per violated rule; empty when the app keeps the contract.
std::vector<std::string> check_app(App& app, const std::vector<StepCall>& calls,
                                   const double* in);

}  // namespace layerparallel
