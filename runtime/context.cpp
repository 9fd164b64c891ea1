#include "context.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace rt {

Context::Context(ContextOptions opts) : opts_(opts) {
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  threads_ = opts_.num_threads > 0 ? opts_.num_threads : hw;
}

void Context::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f, int64_t grain) const {
  if (n <= 0) return;
  const int64_t workers = std::min<int64_t>(threads_, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (workers <= 1) {
    f(0, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t b = w * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&f, b, e] { f(b, e); });
  }
  f(0, std::min(n, chunk));
  for (auto& t : pool) t.join();
}

}  // namespace rt
