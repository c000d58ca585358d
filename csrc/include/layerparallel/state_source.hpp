// Read access to a solved propagation's level-0 states, for apps that are
// linearized around another solve (the adjoint reads the forward states)
// without knowing the solver that holds them.
#pragma once

#include "config.hpp"

namespace layerparallel {

template <class T>
class BasicStateSource {
 public:
  virtual ~BasicStateSource() = default;
  // Level-0 points held here: [first_point(), last_point()].
  virtual index_t first_point() const = 0;
  virtual index_t last_point() const = 0;
  // Whether owned point p has a stored state, and that state (in the memory of
  // the solve's executor; valid until the next solve).
  virtual bool stored(index_t p) const = 0;
  virtual const T* state(index_t p) const = 0;
  // Points not stored are recomputed by steps from the stored point
  // max(floor(p / spacing) * spacing, first_point()).
  virtual index_t stored_spacing() const = 0;
};
using StateSource = BasicStateSource<double>;

}  // namespace layerparallel
