// The App contract's default batch: one step() per task, on the core's
// threads when the app allows concurrent steps (the same bits either way: a
// step's result does not depend on the thread it runs on).
#include "layerparallel/app.hpp"

#include "layerparallel/parallel.hpp"

namespace layerparallel {

template <class T>
void BasicApp<T>::step_batch(int level, const BasicStepTask<T>* tasks, index_t count) {
  if (count == 1 || !concurrent_steps()) {
    for (index_t i = 0; i < count; ++i)
      step(level, tasks[i].from, tasks[i].to, tasks[i].in, tasks[i].out, true);
    return;
  }
  parallel_for(count, [&](index_t i) {
    step(level, tasks[i].from, tasks[i].to, tasks[i].in, tasks[i].out, false);
  });
}

template class BasicApp<float>;
template class BasicApp<double>;

}  // namespace layerparallel
