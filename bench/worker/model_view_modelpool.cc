// File: bench/worker/model_view_modelpool.cc
//
// open_modelpool: the worker side of the pool, exactly as an application
// uses it: Client::connect + acquire; the view is the Model's zero-copy span,
// or the spans of all its tensors (across the shards of a repository).
#include <modelpool/client.hpp>
#include <utility>

#include "bench/common/bench_util.hpp"
#include "bench/worker/model_view.hpp"

namespace modelpool::bench {

bool have_modelpool_client() { return true; }

ModelView open_modelpool(const std::string& socket, const std::string& model, bool tensors) {
  struct Held {
    Client client;
    Model model;
  };
  try {
    Client c = Client::connect(socket);
    Model m = c.acquire(model);
    auto held = std::make_shared<Held>(Held{std::move(c), std::move(m)});
    ModelView v;
    v.data = held->model.bytes().data();
    v.size = held->model.bytes().size();
    if (tensors) {
      v.size = 0;
      for (const Tensor& t : held->model.tensors()) {
        v.parts.push_back(t.data);
        v.size += t.data.size();
      }
      if (!v.parts.empty() && !v.parts.front().empty()) v.data = v.parts.front().data();
    }
    volatile std::byte first = v.data[0];
    (void)first;
    v.first_byte_ns = now_ns();
    v.keep_alive = std::move(held);
    return v;
  } catch (const Error& e) {
    die(std::string("modelpool: ") + std::string(e.code_name()) + ": " + e.what());
  }
}

}  // namespace modelpool::bench
