// The MGRIT engine: hierarchy, relaxation, FAS restriction, correction and
// the cycles. Every sweep is a loop over independent intervals (threads)
// with at most one boundary message per rank and sweep. States live in the
// app's executor's memory; every vector operation goes through it, so a
// device executor keeps the whole solve on the device (the host sees only
// boundary messages and one residual norm per cycle).
#include "layerparallel/mgrit.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
// Message tags: one per level and sweep kind, so sweeps never mix.
enum TagKind { kRelax = 0, kRestrict = 1, kCoarsest = 2 };
int tag(int level, TagKind kind) { return kEngineTagFirst + 4 * level + kind; }
}  // namespace

Distribution Distribution::blocks(const std::vector<index_t>& first_points, index_t n_steps,
                                  bool reversed) {
  // first_points[r] = first level-0 point of rank r in forward order.
  const int P = static_cast<int>(first_points.size());
  Distribution d;
  d.start.resize(P + 1);
  d.rank.resize(P);
  for (int q = 0; q < P; ++q) {
    if (!reversed) {
      d.start[q] = first_points[q];
      d.rank[q] = q;
    } else {
      // Rank r holds forward points [f_r, f_{r+1} - 1] = reversed [N - f_{r+1} + 1, N - f_r].
      const int r = P - 1 - q;
      const index_t next = r + 1 < P ? first_points[r + 1] : n_steps + 1;
      d.start[q] = n_steps - next + 1;
      d.rank[q] = r;
    }
  }
  d.start[P] = n_steps + 1;
  return d;
}

Hierarchy build_hierarchy(index_t n_steps, const MGRITOptions& opt) {
  Hierarchy h;
  h.intervals = {n_steps};
  h.stride = {1};
  while (static_cast<int>(h.intervals.size()) < opt.max_levels &&
         h.intervals.back() > opt.min_coarse) {
    const auto l = h.cfactor.size();
    const index_t c = opt.cfactor[std::min(l, opt.cfactor.size() - 1)];
    if (h.intervals.back() / c < 1) break;
    h.cfactor.push_back(c);
    h.stride.push_back(h.stride.back() * c);
    h.intervals.push_back(h.intervals.back() / c);
  }
  h.cfactor.push_back(1);  // the coarsest level has no C-points
  return h;
}

template <class T>
BasicMGRIT<T>::BasicMGRIT(BasicApp<T>& app, index_t n_steps, const MGRITOptions& opt, const Comm& comm,
             const Distribution& dist)
    : app_(app),
      ex_(app.executor()),
      host_(app.executor().device() == Device::cpu),
      batched_(opt.batch_intervals > 0 || (opt.batch_intervals < 0 && !host_)),
      opt_(opt),
      comm_(comm),
      dist_(dist),
      S_(app.state_size()) {
  if (n_steps < 1) throw std::invalid_argument("MGRIT needs at least one step");
  const int P = static_cast<int>(dist.rank.size());
  if (P != comm.size()) throw std::invalid_argument("distribution does not match the communicator");
  int me = -1;
  for (int q = 0; q < P; ++q)
    if (dist.rank[q] == comm.rank()) me = q;
  if (me < 0) throw std::invalid_argument("this rank is missing from the distribution");

  const Hierarchy h = build_hierarchy(n_steps, opt);
  const auto& counts = h.intervals;
  const auto& cfs = h.cfactor;
  const auto& strides = h.stride;
  levels_.resize(counts.size());
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    Level& L = levels_[l];
    L.stride = strides[l];
    L.cf = cfs[l];
    L.n = counts[l];
    auto block = [&](int q, index_t& p0, index_t& p1) {
      const index_t a = dist.start[q], b = dist.start[q + 1] - 1;
      p0 = ceil_div(a, L.stride);
      p1 = std::min(b / L.stride, L.n);
    };
    block(me, L.p0, L.p1);
    for (int q = me - 1; q >= 0 && L.left < 0; --q) {
      index_t a, b;
      block(q, a, b);
      if (a <= b) L.left = dist.rank[q];
    }
    for (int q = me + 1; q < P && L.right < 0; ++q) {
      index_t a, b;
      block(q, a, b);
      if (a <= b) L.right = dist.rank[q];
    }
    L.store_f = l > 0 || levels_.size() == 1 || opt.store_fine_f;
    const index_t owned = std::max<index_t>(0, L.p1 - L.p0 + 1);
    index_t stored = owned;
    // Storage "C": the C-points, plus the first point when it is an F-point
    // (the anchor from which this rank recomputes its leading F-points).
    if (!L.store_f)
      stored = owned > 0 ? L.p1 / L.cf - ceil_div(L.p0, L.cf) + 1 + (L.p0 % L.cf != 0) : 0;
    // Level l >= 1 owns no states: its point k is level l-1's C-point k c
    // (FAS with injection restricts the C-point values and corrects them with
    // the coarse solution, so the two share storage and restriction and
    // correction copy nothing).
    if (l == 0) L.u = BasicBuffer<T>(ex_, stored * S_);
    if (l > 0) L.g = BasicBuffer<T>(ex_, owned * S_);
    const bool staged = !host_ && !opt.device_messages;
    if (L.left >= 0 && (host_ || staged)) L.recv_buf = BasicHostBuffer<T>(ex_, S_);
    if (L.right >= 0 && (host_ || staged)) L.send_buf = BasicHostBuffer<T>(ex_, S_);
    if (!host_ && L.left >= 0) L.recv_dev = BasicBuffer<T>(ex_, S_);
    if (!host_ && L.right >= 0) L.send_dev = BasicBuffer<T>(ex_, S_);
  }
  work_.resize(std::max(1, num_threads()));
  g0_ = BasicBuffer<T>(ex_, S_);
}

template <class T>
T* BasicMGRIT<T>::batch_work(index_t states) {
  batch_work_.reserve(ex_, states * S_);
  return batch_work_.data();
}

template <class T>
T* BasicMGRIT<T>::work(int slot) {
  auto& w = work_[thread_id()];
  if (w.empty()) w = BasicBuffer<T>(ex_, 3 * S_);
  return w.data() + slot * S_;
}

template <class T>
bool BasicMGRIT<T>::stored(index_t p) const {
  const Level& L = levels_[0];
  return p >= L.p0 && p <= L.p1 && (L.store_f || p % L.cf == 0 || p == L.p0);
}

template <class T>
T* BasicMGRIT<T>::u_ptr(int l, index_t p) {
  if (l > 0) return u_ptr(l - 1, p * levels_[l - 1].cf);  // shared with the finer level
  Level& L = levels_[0];
  if (L.store_f) return L.u.data() + (p - L.p0) * S_;
  if (p % L.cf != 0) return L.u.data() + L.u.size() - S_;  // the anchor p0
  return L.u.data() + (p / L.cf - ceil_div(L.p0, L.cf)) * S_;
}

template <class T>
const T* BasicMGRIT<T>::state(index_t p) const {
  if (!stored(p)) throw std::out_of_range("MGRIT::state: point not stored on this rank");
  return const_cast<BasicMGRIT*>(this)->u_ptr(0, p);
}

template <class T>
const T* BasicMGRIT<T>::g_ptr(int l, index_t p) const {
  if (l == 0) return nullptr;  // level 0: g_p = 0 for p >= 1
  const Level& L = levels_[l];
  return L.g.data() + (p - L.p0) * S_;
}

template <class T>
T* BasicMGRIT<T>::coarse_slot(int l, index_t p) {
  Level& M = levels_[l + 1];
  return M.g.data() + (p / levels_[l].cf - M.p0) * S_;
}

template <class T>
void BasicMGRIT<T>::phi_plain(int l, index_t p, const T* in, T* out, bool inner) {
  const index_t s = levels_[l].stride;
  app_.step(l, p * s, (p + 1) * s, in, out, inner);
  steps_.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
void BasicMGRIT<T>::phi(int l, index_t p, const T* in, T* out, bool inner) {
  phi_plain(l, p, in, out, inner);
  if (const T* g = g_ptr(l, p + 1)) ex_.axpy(S_, T(1), g, out);
}

// Batched Phi: all tasks in one App::step_batch, then (add_g) g_{p+1} added
// to each output in one batched axpy.
template <class T>
void BasicMGRIT<T>::phi_batch(int l, std::vector<BasicStepTask<T>>& tasks, bool add_g) {
  const index_t count = static_cast<index_t>(tasks.size());
  if (count == 0) return;
  app_.step_batch(l, tasks.data(), count);
  steps_.fetch_add(count, std::memory_order_relaxed);
  ++batches_;
  if (!add_g || l == 0) return;
  const index_t stride = levels_[l].stride;
  std::vector<const T*> g(count);
  std::vector<T*> out(count);
  for (index_t i = 0; i < count; ++i) {
    g[i] = g_ptr(l, tasks[i].to / stride);
    out[i] = tasks[i].out;
  }
  ex_.axpy_batch(S_, count, T(1), g.data(), out.data());
}

template <class T>
void BasicMGRIT<T>::send_boundary(int l, int tg, const T* u_last) {
  Level& L = levels_[l];
  if (L.right < 0) return;
  comm_.wait(L.send_req);
  T* msg = host_ ? L.send_buf.data() : L.send_dev.data();
  if (app_.step_at_source())
    phi_plain(l, L.p1, u_last, msg, true);
  else
    ex_.copy(S_, u_last, msg);
  if (!host_ && opt_.device_messages) {  // CUDA-aware MPI reads device memory
    ex_.synchronize();                    // the message is complete first
    comm_.isend(L.right, tg, msg, S_, L.send_req);
    return;
  }
  if (!host_) ex_.to_host(S_, msg, L.send_buf.data());
  comm_.isend(L.right, tg, L.send_buf.data(), S_, L.send_req);
}

template <class T>
void BasicMGRIT<T>::recv_boundary(int l, int tg, T* out, bool add_g) {
  Level& L = levels_[l];
  const T* msg;
  if (!host_ && opt_.device_messages) {
    // Stream work queued earlier may still read recv_dev.
    ex_.synchronize();
    comm_.recv(L.left, tg, L.recv_dev.data(), S_);
    msg = L.recv_dev.data();
  } else if (!host_) {
    // The page-locked buffer's last copy to the device must be done first.
    if (L.recv_copying) ex_.synchronize();
    comm_.recv(L.left, tg, L.recv_buf.data(), S_);
    ex_.from_host(S_, L.recv_buf.data(), L.recv_dev.data());
    L.recv_copying = true;
    msg = L.recv_dev.data();
  } else {
    comm_.recv(L.left, tg, L.recv_buf.data(), S_);
    msg = L.recv_buf.data();
  }
  if (app_.step_at_source())
    ex_.copy(S_, msg, out);
  else
    phi_plain(l, L.p0 - 1, msg, out, true);
  if (add_g)
    if (const T* g = g_ptr(l, L.p0)) ex_.axpy(S_, T(1), g, out);
}

template <class T>
const T* BasicMGRIT<T>::propagate(int l, index_t s, const T* x, index_t e, T* wa,
                               T* wb, bool inner) {
  const Level& L = levels_[l];
  const T* cur = x;
  for (index_t p = s + 1; p <= e; ++p) {
    T* dst = L.store_f ? u_ptr(l, p) : (cur == wa ? wb : wa);
    phi(l, p - 1, cur, dst, inner);
    cur = dst;
  }
  return cur;
}

// F-relaxation on level l: every interval propagates from its C-point through
// its F-points. With `candidates`, each C-point p also receives
// Phi(u_{p-1}) + g_p in level l+1's g slot (for C-relaxation or the residual).
template <class T>
void BasicMGRIT<T>::relax_f(int l, bool candidates) {
  Level& L = levels_[l];
  if (L.p0 > L.p1) return;
  if (candidates && L.consistent && L.store_f) {
    candidates_only(l);
    return;
  }
  L.consistent = true;
  if (batched_) {
    relax_f_batched(l, candidates);
    return;
  }
  const index_t c = L.cf;
  const bool send_out = L.right >= 0 && (!is_c(L, L.p1 + 1) || candidates);
  const int tg = tag(l, kRelax);

  // Segment from own C-point s: F-points s+1..e, then maybe a candidate.
  auto run_segment = [&](index_t s, bool inner) {
    const index_t e = std::min({s + c - 1, L.p1, L.n});
    T* wa = work(0);
    T* wb = work(1);
    const T* last = propagate(l, s, u_ptr(l, s), e, wa, wb, inner);
    if (candidates && e + 1 <= L.p1 && is_c(L, e + 1)) phi(l, e, last, coarse_slot(l, e + 1), inner);
    if (e == L.p1 && send_out) send_boundary(l, tg, last);
  };

  std::vector<index_t> starts;
  for (index_t s = ceil_div(L.p0, c) * c; s <= L.p1; s += c) starts.push_back(s);
  // The segment reaching p1 first, so the right neighbour is not kept waiting.
  const bool last_is_own = !starts.empty();
  if (last_is_own) {
    run_segment(starts.back(), true);
    starts.pop_back();
  }
  if (app_.concurrent_steps())
    parallel_for(static_cast<index_t>(starts.size()),
                 [&](index_t i) { run_segment(starts[i], false); });
  else
    for (index_t s : starts) run_segment(s, true);
  relax_leading(l, candidates, send_out, tg);
}

template <class T>
void BasicMGRIT<T>::relax_leading(int l, bool candidates, bool send_out, int tg) {
  Level& L = levels_[l];
  const index_t c = L.cf;
  if (!(L.p0 > 0 && (!is_c(L, L.p0) || candidates))) return;
  T* wa = work(0);
  T* wb = work(1);
  if (is_c(L, L.p0)) {  // only the candidate of my first point
    recv_boundary(l, tg, coarse_slot(l, L.p0), true);
  } else {
    T* first = u_ptr(l, L.p0);
    recv_boundary(l, tg, first, true);
    const index_t next_c = ceil_div(L.p0, c) * c;
    const index_t e = std::min({next_c - 1, L.p1, L.n});
    const T* last = propagate(l, L.p0, first, e, wa, wb, true);
    if (candidates && e + 1 <= L.p1 && is_c(L, e + 1)) phi(l, e, last, coarse_slot(l, e + 1), true);
    if (e == L.p1 && send_out) send_boundary(l, tg, last);
  }
}

// F-relaxation with the intervals batched: step j of every interval that
// starts at an own C-point is one App::step_batch (j = c: the C-point
// candidates). Storage "C" keeps each interval's running state in two slots
// of its own. The leading F-points (after the receive) follow one by one.
template <class T>
void BasicMGRIT<T>::relax_f_batched(int l, bool candidates) {
  Level& L = levels_[l];
  const index_t c = L.cf, s0 = L.stride;
  const bool send_out = L.right >= 0 && (!is_c(L, L.p1 + 1) || candidates);
  const int tg = tag(l, kRelax);
  std::vector<index_t> starts;
  for (index_t s = ceil_div(L.p0, c) * c; s <= L.p1; s += c) starts.push_back(s);
  const index_t m = static_cast<index_t>(starts.size());
  auto end_of = [&](index_t s) { return std::min({s + c - 1, L.p1, L.n}); };
  T* wk = (L.store_f || m == 0) ? nullptr : batch_work(2 * m);
  std::vector<const T*> cur(m);
  for (index_t i = 0; i < m; ++i) cur[i] = u_ptr(l, starts[i]);
  std::vector<BasicStepTask<T>> tasks;
  std::vector<index_t> fpoint;  // segment of each F-point task (-1: a candidate)
  tasks.reserve(m);
  fpoint.reserve(m);
  for (index_t j = 1; j <= c; ++j) {
    tasks.clear();
    fpoint.clear();
    for (index_t i = 0; i < m; ++i) {
      const index_t s = starts[i], e = end_of(s), p = s + j;
      T* dst;
      if (p <= e) {
        dst = L.store_f ? u_ptr(l, p) : wk + (2 * i + (j & 1)) * S_;
        fpoint.push_back(i);
      } else if (p == e + 1 && candidates && p <= L.p1 && is_c(L, p)) {
        dst = coarse_slot(l, p);
        fpoint.push_back(-1);
      } else {
        continue;
      }
      tasks.push_back({(p - 1) * s0, p * s0, cur[i], dst});
    }
    if (tasks.empty()) break;  // active intervals are a prefix, shrinking with j
    phi_batch(l, tasks, true);
    for (std::size_t k = 0; k < tasks.size(); ++k)
      if (fpoint[k] >= 0) cur[fpoint[k]] = tasks[k].out;
  }
  if (m > 0 && send_out && end_of(starts.back()) == L.p1) send_boundary(l, tg, cur[m - 1]);
  relax_leading(l, candidates, send_out, tg);
}

// With consistent F-points, an F-relaxation would recompute them bit for bit:
// only the C-point candidates Phi(u_{p-1}) + g_p are new work.
template <class T>
void BasicMGRIT<T>::candidates_only(int l) {
  Level& L = levels_[l];
  const index_t c = L.cf;
  const int tg = tag(l, kRelax);
  if (L.right >= 0 && is_c(L, L.p1 + 1)) send_boundary(l, tg, u_ptr(l, L.p1));
  std::vector<index_t> targets;
  for (index_t p = ceil_div(std::max<index_t>(L.p0 + 1, 1), c) * c; p <= L.p1; p += c)
    targets.push_back(p);
  auto one = [&](index_t i) {
    const index_t p = targets[i];
    phi(l, p - 1, u_ptr(l, p - 1), coarse_slot(l, p), !app_.concurrent_steps());
  };
  if (batched_) {
    std::vector<BasicStepTask<T>> tasks;
    tasks.reserve(targets.size());
    for (index_t p : targets)
      tasks.push_back({(p - 1) * L.stride, p * L.stride, u_ptr(l, p - 1), coarse_slot(l, p)});
    phi_batch(l, tasks, true);
  } else if (app_.concurrent_steps())
    parallel_for(static_cast<index_t>(targets.size()), one);
  else
    for (index_t i = 0; i < static_cast<index_t>(targets.size()); ++i) one(i);
  if (L.p0 > 0 && is_c(L, L.p0)) recv_boundary(l, tg, coarse_slot(l, L.p0), true);
}

template <class T>
void BasicMGRIT<T>::apply_candidates(int l) {
  Level& L = levels_[l];
  L.consistent = false;
  const index_t c = L.cf;
  std::vector<const T*> src;
  std::vector<T*> dst;
  for (index_t p = std::max<index_t>(c, ceil_div(L.p0, c) * c); p <= L.p1; p += c) {
    src.push_back(coarse_slot(l, p));
    dst.push_back(u_ptr(l, p));
  }
  copy_all(src, dst);
}

template <class T>
void BasicMGRIT<T>::copy_all(const std::vector<const T*>& src, const std::vector<T*>& dst) {
  const index_t count = static_cast<index_t>(src.size());
  if (batched_) {
    if (count > 0) ex_.copy_batch(S_, count, src.data(), dst.data());
    return;
  }
  for (index_t i = 0; i < count; ++i) ex_.copy(S_, src[i], dst[i]);
}

// r_p = Phi(u_{p-1}) + g_p - u_p at the C-points, left in level l+1's g;
// returns the local sum of squares (one host synchronization).
template <class T>
double BasicMGRIT<T>::residual_into_coarse(int l) {
  Level& L = levels_[l];
  const index_t c = L.cf;
  std::vector<const T*> u;
  std::vector<T*> r;
  for (index_t p = ceil_div(L.p0, c) * c; p <= L.p1; p += c) {
    if (p == 0) {
      ex_.fill(S_, T(0), coarse_slot(l, p));
    } else if (batched_) {
      u.push_back(u_ptr(l, p));
      r.push_back(coarse_slot(l, p));
    } else {
      ex_.residual_accumulate(S_, u_ptr(l, p), coarse_slot(l, p));
    }
  }
  if (!u.empty())
    ex_.residual_accumulate_batch(S_, static_cast<index_t>(u.size()), u.data(), r.data());
  return ex_.take_sum();
}

// FAS: v = u at the C-points, g_c = r + A_c(v): g_k = r_k + v_k - Phi_c(v_{k-1}).
template <class T>
void BasicMGRIT<T>::restrict_to(int l) {
  Level& M = levels_[l + 1];
  M.consistent = false;
  if (M.p0 > M.p1) return;  // v = u at the C-points: the same storage
  const int tg = tag(l + 1, kRestrict);
  if (M.right >= 0) send_boundary(l + 1, tg, u_ptr(l + 1, M.p1));
  auto update = [&](index_t k, const T* phi_prev) {
    // g holds r_k
    ex_.fas_update(S_, u_ptr(l + 1, k), phi_prev, M.g.data() + (k - M.p0) * S_);
  };
  const index_t first = std::max<index_t>(M.p0 + 1, 1);
  auto local = [&](index_t i) {
    const index_t k = first + i;
    T* tmp = work(0);
    phi_plain(l + 1, k - 1, u_ptr(l + 1, k - 1), tmp, false);
    update(k, tmp);
  };
  const index_t count = std::max<index_t>(0, M.p1 - first + 1);
  if (batched_ && count > 0) {
    T* tmp = batch_work(count);
    std::vector<BasicStepTask<T>> tasks(count);
    std::vector<const T*> v(count), ph(count);
    std::vector<T*> g(count);
    for (index_t i = 0; i < count; ++i) {
      const index_t k = first + i;
      tasks[i] = {(k - 1) * M.stride, k * M.stride, u_ptr(l + 1, k - 1), tmp + i * S_};
      v[i] = u_ptr(l + 1, k);
      ph[i] = tmp + i * S_;
      g[i] = M.g.data() + (k - M.p0) * S_;
    }
    phi_batch(l + 1, tasks, false);
    ex_.fas_update_batch(S_, count, v.data(), ph.data(), g.data());
  } else if (app_.concurrent_steps()) {
    parallel_for(count, local);
  } else {
    for (index_t i = 0; i < count; ++i) local(i);
  }
  if (M.p0 == 0) {
    ex_.copy(S_, u_ptr(l + 1, 0), M.g.data());  // g_0 = u_0
  } else {
    T* tmp = work(0);
    recv_boundary(l + 1, tg, tmp, false);
    update(M.p0, tmp);
  }
}

// u at the C-points = the coarse solution: level l+1's points are level l's
// C-points, so the values are in place; only the F-points go stale.
template <class T>
void BasicMGRIT<T>::correct_from(int l) {
  levels_[l].consistent = false;
}

// Serial propagation across the ranks (the chain is the point: it is exact).
// On a device with one rank the chain is one recorded sequence of launches,
// replayed without host overhead per step once recorded.
template <class T>
void BasicMGRIT<T>::coarsest_solve(int l) {
  Level& L = levels_[l];
  if (L.p0 > L.p1) return;
  const std::uint64_t app_key = app_.replay_key();
  if (opt_.graphs && !host_ && comm_.size() == 1 && app_key != 0 && L.p1 >= 1) {
    // Everything the chain touches besides the app's own data: the level and
    // its arrays, mixed into the app's key.
    const std::uint64_t key =
        replay_hash({app_key, static_cast<std::uint64_t>(l), key_of(u_ptr(l, L.p0)), key_of(L.g.data()),
                     static_cast<std::uint64_t>(L.p1), static_cast<std::uint64_t>(S_)});
    const index_t s = L.stride;
    const bool ran = ex_.record_or_replay(key, [&] {
      for (index_t p = 1; p <= L.p1; ++p) {
        app_.step(l, (p - 1) * s, p * s, u_ptr(l, p - 1), u_ptr(l, p), true);
        if (const T* g = g_ptr(l, p)) ex_.axpy(S_, 1.0, g, u_ptr(l, p));
      }
    });
    steps_.fetch_add(L.p1, std::memory_order_relaxed);
    if (!ran) ++replays_;
    return;
  }
  const int tg = tag(l, kCoarsest);
  for (index_t p = std::max<index_t>(L.p0, 1); p <= L.p1; ++p) {
    if (p == L.p0)
      recv_boundary(l, tg, u_ptr(l, p), true);
    else
      phi(l, p - 1, u_ptr(l, p - 1), u_ptr(l, p), true);
  }
  send_boundary(l, tg, u_ptr(l, L.p1));
}

template <class T>
void BasicMGRIT<T>::cycle(int l, bool fcycle, double* fine_residual) {
  const int last = n_levels() - 1;
  if (l == last) {
    coarsest_solve(l);
    return;
  }
  if (fine_residual == nullptr) {  // on level 0 the driver relaxed already
    relax_f(l, true);
    for (int s = 0; s < opt_.relax_cf; ++s) {
      apply_candidates(l);
      relax_f(l, true);
    }
    residual_into_coarse(l);
  }
  restrict_to(l);
  cycle(l + 1, fcycle, nullptr);
  if (fcycle && l + 1 < last) cycle(l + 1, false, nullptr);
  correct_from(l);
  relax_f(l, false);
}

// Level l's values injected to level l+1 with a zero right-hand side (the
// plain coarse propagation from u_0): no residual exists yet.
template <class T>
void BasicMGRIT<T>::inject_start(int l) {
  // Level l+1's points are level l's C-points (u_ptr): nothing to copy.
  Level& M = levels_[l + 1];
  M.consistent = false;
  for (index_t k = M.p0; k <= M.p1; ++k) {
    T* g = M.g.data() + (k - M.p0) * S_;
    if (k == 0)
      ex_.copy(S_, u_ptr(l + 1, 0), g);
    else
      ex_.fill(S_, T(0), g);
  }
}

// The initial guess injected to every level (right-hand sides zero), solved
// on the coarsest, and interpolated up with F-relaxation.
template <class T>
void BasicMGRIT<T>::nested_start() {
  const int last = n_levels() - 1;
  for (int l = 0; l < last; ++l) inject_start(l);
  coarsest_solve(last);
  for (int l = last - 1; l >= 0; --l) {
    correct_from(l);
    relax_f(l, false);
  }
}

// Agreed by every rank: a step that failed on any rank fails the solve on
// all of them, naming the (highest) rank where it happened.
template <class T>
void BasicMGRIT<T>::check_steps() {
  const double failed = comm_.allreduce_max(app_.failed() ? comm_.rank() + 1.0 : 0.0);
  if (failed > 0.0)
    throw MGRITDiverged("a step failed on rank " + std::to_string(static_cast<int>(failed) - 1) +
                        " (see the error raised there)");
}

// XBraid's skipped first down-cycle: the nested start, except that F-cycles
// run a V-cycle from every intermediate level on the way up (XBraid's
// up-cycle from the coarsest level with F-cycles on).
template <class T>
void BasicMGRIT<T>::xbraid_start() {
  const int last = n_levels() - 1;
  for (int l = 0; l < last; ++l) inject_start(l);
  coarsest_solve(last);
  for (int l = last - 1; l >= 0; --l) {
    correct_from(l);
    if (opt_.fcycle && l >= 1)
      cycle(l, false, nullptr);  // ends with level l's F-relaxation
    else
      relax_f(l, false);
  }
}

template <class T>
SolveInfo BasicMGRIT<T>::solve(const T* g0, bool warm_start, const T* init_guess) {
  Level& L0 = levels_[0];
  steps_ = 0;
  batches_ = replays_ = 0;
  if (static_cast<int>(work_.size()) < num_threads()) work_.resize(num_threads());
  for (auto& lv : levels_) lv.consistent = false;
  const bool cold = !(warm_start && have_solution_);
  // The initial guess, in one batched copy (one launch on a device, not one
  // per point). One level needs none: the serial chain writes every point.
  // A solve that relaxes needs it at the C-points only: F-relaxation writes
  // every F-point before anything reads one.
  if (cold && n_levels() > 1) {
    const bool c_points_only = opt_.max_iter > 0;
    std::vector<T*> dst;
    for (index_t p = std::max<index_t>(L0.p0, 1); p <= L0.p1; ++p)
      if (stored(p) && (!c_points_only || is_c(L0, p))) dst.push_back(u_ptr(0, p));
    if (!dst.empty()) {
      const T* guess = init_guess;
      if (!guess) {  // zeros: fill the first, copy it to the others
        ex_.fill(S_, T(0), dst[0]);
        guess = dst[0];
        dst.erase(dst.begin());
      }
      const std::vector<const T*> src(dst.size(), guess);
      ex_.copy_batch(S_, static_cast<index_t>(dst.size()), src.data(), dst.data());
    }
  }
  if (L0.p0 == 0) {
    ex_.copy(S_, g0, g0_.data());
    ex_.copy(S_, g0, u_ptr(0, 0));
  }
  have_solution_ = true;
  SolveInfo info;
  if (n_levels() == 1) {
    coarsest_solve(0);
    for (auto& lv : levels_) comm_.wait(lv.send_req);
    check_steps();
    info.iterations = 1;
    info.converged = true;
    info.residuals.push_back(0.0);
    info.steps = steps_;
    info.batches = batches_;
    info.replays = replays_;
    return info;
  }
  const bool fixed = !(opt_.tol > 0.0) && !(opt_.rtol > 0.0);
  if (opt_.skip_first_down && cold) {
    if (opt_.xbraid) {
      xbraid_start();
      ++info.iterations;  // XBraid counts the start cycle
    } else {
      nested_start();
    }
  }
  double r0 = -1.0;
  while (true) {
    if ((fixed || opt_.xbraid) && info.iterations >= opt_.max_iter) break;
    relax_f(0, true);
    for (int s = 0; s < opt_.relax_cf; ++s) {
      apply_candidates(0);
      relax_f(0, true);
    }
    const double r = std::sqrt(comm_.allreduce_sum(residual_into_coarse(0)));
    info.residuals.push_back(r);
    check_steps();
    if (!std::isfinite(r)) throw MGRITDiverged("MGRIT residual is not finite");
    if (r0 < 0.0) r0 = r;
    if (r > opt_.divergence * std::max(r0, std::numeric_limits<double>::min()))
      throw MGRITDiverged("MGRIT residual grew from " + std::to_string(r0) + " to " +
                          std::to_string(r));
    const bool converged =
        (opt_.tol > 0.0 && r <= opt_.tol) || (opt_.rtol > 0.0 && r <= opt_.rtol * r0);
    if (opt_.xbraid) {
      // XBraid checks the residual after the cycle that follows it, and
      // counts that cycle: iterations = residuals (+ 1 for the start).
      cycle(0, opt_.fcycle, &info.residuals.back());
      ++info.iterations;
      info.converged = converged;
      if (converged || info.iterations >= opt_.max_iter) break;
      continue;
    }
    if (converged) {
      info.converged = true;
      break;
    }
    if (info.iterations >= opt_.max_iter) break;
    cycle(0, opt_.fcycle, &info.residuals.back());
    ++info.iterations;
  }
  for (auto& lv : levels_) comm_.wait(lv.send_req);
  info.steps = steps_;
  info.batches = batches_;
  info.replays = replays_;
  return info;
}

template <class T>
void BasicMGRIT<T>::export_states(T* out) const {
  ex_.to_host(levels_[0].u.size(), levels_[0].u.data(), out);
}

template <class T>
void BasicMGRIT<T>::import_states(const T* in) {
  ex_.from_host(levels_[0].u.size(), in, levels_[0].u.data());
  have_solution_ = true;
}

template <class T>
void BasicMGRIT<T>::sweep_steps() {
  if (n_levels() < 2) throw std::logic_error("sweep_steps needs two or more levels");
  levels_[0].consistent = false;  // a step into every point, F-points included
  relax_f(0, true);
  for (auto& lv : levels_) comm_.wait(lv.send_req);
}

template <class T>
void BasicMGRIT<T>::state_into(index_t p, T* out, T* wk) {
  if (stored(p)) {
    ex_.copy(S_, u_ptr(0, p), out);
    return;
  }
  const Level& L = levels_[0];
  const index_t cp = std::max((p / L.cf) * L.cf, L.p0);
  const T* cur = u_ptr(0, cp);
  for (index_t q = cp + 1; q <= p; ++q) {
    T* dst = ((p - q) % 2 == 0) ? out : wk;
    phi(0, q - 1, cur, dst, true);
    cur = dst;
  }
}

template class BasicMGRIT<float>;
template class BasicMGRIT<double>;

}  // namespace layerparallel
