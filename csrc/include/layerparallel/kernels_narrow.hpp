// Residual-layer kernels for narrow layers of a fixed width (2, 4, 8, 16).
//
// For a few columns the BLAS spends more on its call, packing and edge
// handling than on the product. Here the width is a template parameter: one
// row's product W u + b is a fully unrolled loop over W-element vectors that
// the compiler keeps in registers, with the bias, the activation and (in the
// adjoint) the gradient's outer product fused into the same pass over the row,
// so each row is read once and no z round-trips through memory between a
// product and the element-wise work after it. Portable C++, no intrinsics.
//
// Whether these or the BLAS run is decided per process, per scalar type and
// width, by a short measurement at first use (select_narrow), or forced with
// LP_NARROW_KERNEL=on|off or set_narrow_mode. The BLAS stays the general path.
// Widths 32 and 64 have register-blocked kernels (kernels_blocked.hpp) behind
// the same entry points, mode and selection.
#pragma once

#include "network.hpp"

namespace layerparallel {

// Which path the residual layers take at the widths the narrow kernels cover.
enum class NarrowMode : int { automatic = 0, on = 1, off = 2 };

// The mode: LP_NARROW_KERNEL (auto, on, off; default auto) read at first use,
// or the last set_narrow_mode. Setting it forgets the cached measurements.
NarrowMode narrow_mode();
void set_narrow_mode(NarrowMode m);

// For other selections under the same mode (the conv kernels): the counter
// set_narrow_mode bumps (cached outcomes older than it are stale), and the
// NarrowForce of this thread (1 narrow, 0 BLAS, -1 none).
int narrow_generation();
int narrow_forced();

// True when width w has a narrow (2, 4, 8, 16) or blocked (32, 64) kernel.
bool narrow_width(index_t w);

// Whether the layers of width w in scalar type T take the narrow kernels
// (false for every width without one): the mode, or under `automatic` the
// cached outcome of one timing of both paths on this machine.
template <class T>
bool use_narrow(index_t w);

// The narrow kernels. Each returns false (and does nothing) when use_narrow
// says the BLAS path runs; the arguments and results are those of the
// layer.hpp function of the same name.
template <class T>
bool narrow_forward(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                    index_t batch, T* u_next, T* z);
template <class T>
bool narrow_adjoint(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                    const T* lam_next, index_t batch, T* lam, T* work, bool z_known);
template <class T>
bool narrow_gradient(const NetConfig& cfg, T h, const T* u, const T* d, index_t batch, T* gW,
                     T* gb);
template <class T>
bool narrow_adjoint_gradient(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                             const T* lam_next, index_t batch, T* lam, T* work, bool z_known,
                             T* gW, T* gb);
template <class T>
bool narrow_derivative(const NetConfig& cfg, const T* W, const T* b, const T* u, index_t batch,
                       T* D);
template <class T>
bool narrow_adjoint_linearized(const NetConfig& cfg, const T* W, T h, const T* D,
                               const T* lam_next, index_t batch, T* lam, T* work);

// While alive on a thread, use_narrow answers `on` there (the selection's
// timing runs both paths through the public layer functions with it).
struct NarrowForce {
  explicit NarrowForce(bool on);
  ~NarrowForce();
  NarrowForce(const NarrowForce&) = delete;
  NarrowForce& operator=(const NarrowForce&) = delete;
  int saved;
};

}  // namespace layerparallel
