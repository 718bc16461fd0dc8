// File: modelpool/client.hpp
//
// The C++ client of a modelpool broker. A Client connects to the broker's
// worker socket; Client::acquire returns a Model: a read-only, zero-copy view
// of a model's bytes in the pool's shared-memory segment, and of its tensors.
// The broker keeps the bytes in place while the Model holds its handle; the
// Model releases it when destroyed (or by release()).
//
// Errors: every fallible call throws modelpool::Error, whose code() is one of
// the protocol's ErrorCodes: the broker's own code for a refused request,
// kUnavailable when the broker cannot be reached, kProtocol when its reply
// breaks the protocol.
//
// Threads: one Client may be used from several threads (its requests are
// serialized). A Model's const members may be called from several threads;
// release(), assignment and destruction must not race with other calls on
// the same Model. A Model stays valid after its Client is destroyed.
//
// Fork: a Client and its handles belong to the process that connected. In a
// forked child, inherited Models stay readable and release nothing, and
// acquire() on an inherited Client throws kUnavailable: connect a new Client.
//
// Broker restarts: the mappings stay readable while the broker is down. The
// next acquire() on the Client reconnects (retrying with backoff for up to
// ClientOptions::reconnect_timeout) and re-acquires the handles of the
// Client's live Models, so the restarted broker protects their bytes again.
// A Model whose entry did not come back unchanged (same generation, same
// place) keeps its mapping but loses that protection: acquire it anew.
#ifndef MODELPOOL_CLIENT_HPP_
#define MODELPOOL_CLIENT_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "modelpool/error_code.hpp"

namespace modelpool {

namespace detail {
class Connection;
struct ModelState;
}  // namespace detail

// The one exception type of the client. what() is the message.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message);
  ~Error() override;
  ErrorCode code() const noexcept { return code_; }
  // The wire spelling of code(), e.g. "pool_full".
  std::string_view code_name() const noexcept;

 private:
  ErrorCode code_;
};

enum class Format { raw, safetensors, gguf };
// "raw", "safetensors" or "gguf", as the wire and the bindings spell it.
std::string_view format_name(Format format) noexcept;

// A view of one tensor; `data` points into the Model's mapping and is valid
// while the Model holds its handle.
struct Tensor {
  std::string name;
  std::string dtype;  // as the format spells it: "F32", "BF16", "Q4_K", ...
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};

// One file of a model. A model of one file has one, named as the model; a
// repository or a GGUF split set has its weights files first (in index
// order), then its small files (config.json, tokenizer.json, ...).
struct FileInfo {
  std::string name;  // in the repository: "model-00001-of-00002.safetensors"
  std::uint64_t size = 0;
  Format format = Format::raw;
  bool weights = false;  // its tensors are the model's
};

struct AcquireOptions {
  // How long the broker may wait for room when the pool is full (sent as
  // wait_ms; nullopt: the broker's default).
  std::optional<std::chrono::milliseconds> wait;
  // Fault every page in before acquire() returns (MADV_POPULATE_READ).
  // On a segment of 2 MiB pages (page_size()) the library does this anyway
  // the first time this process acquires the model's bytes: one system call
  // fills a 2 MiB page-table entry per 2 MiB for less than the page faults
  // it saves (0.7 ms per resident GiB against 1.2 ms of faults,
  // docs/hugepages.md); later acquires find the entries in place.
  bool populate = false;
};

struct ClientOptions {
  // How long acquire() keeps trying to reach a broker that went away
  // (reconnecting with backoff, 10 ms doubling up to 500 ms) before it
  // throws kUnavailable. nullopt: $MODELPOOL_RECONNECT_TIMEOUT_MS (in ms)
  // as it is when the Client is created (connect() reads it once; a later
  // setenv does not change this Client), else 10 s. Zero: one attempt.
  std::optional<std::chrono::milliseconds> reconnect_timeout;
  // Hand releases to the broker through a page of shared memory (two
  // stores, no system call, the broker is not woken) when the broker offers
  // one; false sends every release as a frame on the socket.
  bool release_ring = true;
};

class Model {
 public:
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;  // releases the handle held before
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();  // releases the handle (errors ignored)

  // The model's bytes; empty after release() and for a moved-from Model.
  // For a model of several files, the first weights file's.
  std::span<const std::byte> bytes() const;
  std::uint64_t size() const;
  std::uint64_t generation() const;
  std::uint64_t checksum() const;  // xxh3-64 of the bytes, computed by the broker
  std::uint64_t handle() const;    // the broker's handle (changes after a broker restart)
  const std::string& name() const;
  bool cached() const;  // true when the broker needed no load
  Format format() const;

  // The files of the model (one for a model of one file).
  const std::vector<FileInfo>& files() const;
  // The bytes of file `name` (as files() names it), zero-copy from the pool,
  // valid while the Model holds its handle; Error(kNotFound) if there is
  // none, Error(kStaleHandle) after release().
  std::span<const std::byte> file(std::string_view name) const;
  // The commit an hf: name resolved to; empty for other names.
  const std::string& commit() const;

  // The tensors in file order (empty for raw models); for a model of several
  // files, those of each weights file in turn, one namespace. Parsed once, lazily.
  // Throws Error(kLoadFailed) if the file's index is invalid and
  // Error(kStaleHandle) after release().
  const std::vector<Tensor>& tensors() const;
  // The tensor called `name`; Error(kNotFound) if there is none.
  Tensor tensor(std::string_view name) const;
  // The file's metadata (safetensors __metadata__, GGUF key-values) as JSON
  // object text; "{}" for raw models. Same errors as tensors().
  const std::string& metadata_json() const;
  // The metadata value under `key` if it is a string, else nullopt.
  std::optional<std::string> metadata(std::string_view key) const;

  // Releases the handle: spans obtained before must not be used any more
  // (the broker may evict or reuse the bytes). Sends the release without
  // waiting for the broker; idempotent.
  void release();

 private:
  friend class Client;
  explicit Model(std::unique_ptr<detail::ModelState> state);
  const detail::ModelState& state() const;

  std::unique_ptr<detail::ModelState> state_;
};

class Client {
 public:
  // Connects to the default pool: $MODELPOOL_SOCKET if set, else
  // RUN_DIR/modelpool.sock (RUN_DIR: $MODELPOOL_RUN_DIR, else
  // $XDG_RUNTIME_DIR/modelpool, else /tmp/modelpool-$UID).
  static Client connect();
  // Connects to the worker socket at `socket_path`. Throws kUnavailable when
  // no broker answers there, kProtocol when it speaks another protocol.
  // Throws kForbidden when the broker runs as a user other than this
  // process's, root or the one $MODELPOOL_BROKER_UID names (uid or user
  // name), or when its segment is not a file of the broker's user (or root)
  // that only it may write; the message names both users, nothing is mapped.
  static Client connect(const std::string& socket_path);
  // The same with options; the first connection is not retried.
  static Client connect(const std::string& socket_path, ClientOptions options);
  // The default pool (as connect()) with options.
  static Client connect(ClientOptions options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Acquires `model` (a name below the broker's models root or in its
  // manifest), loading it first if needed; blocks until the bytes are ready.
  // Throws the broker's code: kNotFound, kInvalidName, kForbidden,
  // kTooLarge, kPoolFull, kLoadFailed, kShuttingDown; or kUnavailable.
  Model acquire(std::string_view model, AcquireOptions options = {});

  const std::string& pool() const;
  const std::string& segment_path() const;
  std::uint64_t page_size() const;  // of the segment's filesystem

 private:
  explicit Client(std::shared_ptr<detail::Connection> connection);

  std::shared_ptr<detail::Connection> connection_;
};

}  // namespace modelpool

#endif  // MODELPOOL_CLIENT_HPP_
