// File: bench/worker/model_view.hpp
//
// The three ways a worker process gets a model's bytes, behind one type so
// the worker's timing code is identical for all of them:
//   read      read() the file into a private buffer (what most loaders do)
//   mmap      mmap(MAP_PRIVATE) the file and fault its page-cache pages in
//   shm       mmap(MAP_SHARED) of a plain /dev/shm file (the "limit" case)
//   modelpool connect to the broker, acquire, use the zero-copy view (or,
//             with `tensors`, the views of every tensor: for a repository,
//             those of all its shards)
// A ModelView owns whatever keeps the bytes alive (buffer, mapping, or the
// client and its handle) and releases it when destroyed.
#ifndef MODELPOOL_BENCH_WORKER_MODEL_VIEW_HPP_
#define MODELPOOL_BENCH_WORKER_MODEL_VIEW_HPP_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace modelpool::bench {

struct ModelView {
  const std::byte* data = nullptr;
  std::uint64_t size = 0;
  // When not empty, the bytes to touch instead of [data, data + size)
  // (size is then their total).
  std::vector<std::span<const std::byte>> parts;
  // CLOCK_MONOTONIC when the first byte was readable (read: after the first chunk).
  std::int64_t first_byte_ns = 0;
  std::shared_ptr<void> keep_alive;
};

// `shared`: MAP_SHARED (shm mode) instead of MAP_PRIVATE; `populate`: MAP_POPULATE.
ModelView open_read(const std::string& path);
ModelView open_mmap(const std::string& path, bool shared, bool populate);

// True when this build has the client library (otherwise open_modelpool
// exits with "not built").
bool have_modelpool_client();
// `tensors`: the view is every tensor's bytes (Model::tensors()), not bytes().
ModelView open_modelpool(const std::string& socket, const std::string& model, bool tensors);

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCH_WORKER_MODEL_VIEW_HPP_
