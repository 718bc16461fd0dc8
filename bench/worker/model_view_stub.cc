// File: bench/worker/model_view_stub.cc
//
// open_modelpool for builds without the client library: the driver asks
// have_modelpool_client() (via `mp_bench_worker --probe`) and marks the
// modelpool columns "not measured" instead of calling this.
#include "bench/common/bench_util.hpp"
#include "bench/worker/model_view.hpp"

namespace modelpool::bench {

bool have_modelpool_client() { return false; }

ModelView open_modelpool(const std::string&, const std::string&, bool) {
  die("modelpool client library not built into this bench");
}

}  // namespace modelpool::bench
