// File: clientlib/src/c_api.cc
//
// The C ABI (modelpool/modelpool.h) over the C++ client. Every entry point
// catches everything: exceptions become an mp_error code plus this thread's
// last error message.
#include <chrono>
#include <exception>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "modelpool/client.hpp"
#include "modelpool/modelpool.h"

struct mp_client {
  modelpool::Client client;
};

struct mp_model {
  modelpool::Model model;
};

namespace {

using modelpool::ErrorCode;

static_assert(MP_OK == static_cast<int>(ErrorCode::kOk));
static_assert(MP_BAD_REQUEST == static_cast<int>(ErrorCode::kBadRequest));
static_assert(MP_NOT_FOUND == static_cast<int>(ErrorCode::kNotFound));
static_assert(MP_STALE_HANDLE == static_cast<int>(ErrorCode::kStaleHandle));
static_assert(MP_UNAVAILABLE == static_cast<int>(ErrorCode::kUnavailable));
static_assert(MP_PROTOCOL == static_cast<int>(ErrorCode::kProtocol));
static_assert(MP_INTERNAL == static_cast<int>(ErrorCode::kInternal));

thread_local std::string t_last_error;

int fail(int code, std::string_view message) {
  try {
    t_last_error.assign(message);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the code still says it
  }
  return code;
}

// Runs `f`, mapping whatever it throws to a code and a message.
template <typename F>
int guarded(F&& f) noexcept {
  try {
    std::forward<F>(f)();
    return MP_OK;
  } catch (const modelpool::Error& e) {
    return fail(static_cast<int>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(MP_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(MP_INTERNAL, e.what());
  } catch (...) {
    return fail(MP_INTERNAL, "unknown exception");
  }
}

int null_argument(const char* what) {
  return fail(MP_BAD_REQUEST, std::string(what) + " must not be NULL");
}

int fill_tensor(const modelpool::Tensor& t, mp_tensor* out) {
  if (t.shape.size() > MP_MAX_DIMS) {
    return fail(MP_INTERNAL, "tensor '" + t.name + "' has " + std::to_string(t.shape.size()) +
                                 " dimensions; the C ABI carries at most 8");
  }
  *out = mp_tensor{};
  out->name = t.name.c_str();
  out->dtype = t.dtype.c_str();
  out->ndim = static_cast<int32_t>(t.shape.size());
  for (std::size_t i = 0; i < t.shape.size(); ++i) out->shape[i] = t.shape[i];
  out->data = t.data.data();
  out->size = t.data.size();
  return MP_OK;
}

mp_format to_mp_format(modelpool::Format f) {
  switch (f) {
    case modelpool::Format::safetensors:
      return MP_FORMAT_SAFETENSORS;
    case modelpool::Format::gguf:
      return MP_FORMAT_GGUF;
    case modelpool::Format::raw:
      break;
  }
  return MP_FORMAT_RAW;
}

void fill_file(const modelpool::Model& m, const modelpool::FileInfo& f, mp_file* out) {
  const std::span<const std::byte> bytes = m.file(f.name);
  *out = mp_file{.name = f.name.c_str(),
                 .format = to_mp_format(f.format),
                 .weights = f.weights ? 1 : 0,
                 .data = bytes.empty() ? nullptr : bytes.data(),
                 .size = bytes.size()};
}

}  // namespace

extern "C" {

int mp_abi_version(void) { return MODELPOOL_ABI_VERSION; }

const char* mp_error_name(int code) {
  if (code < 0 || code > MP_INTERNAL) return "internal";
  // The names are string literals, hence NUL-terminated.
  return modelpool::to_string(static_cast<ErrorCode>(code)).data();
}

const char* mp_last_error_message(void) { return t_last_error.c_str(); }

int mp_connect(const char* socket_path, mp_client** out) {
  if (out == nullptr) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    auto client = socket_path == nullptr ? modelpool::Client::connect()
                                         : modelpool::Client::connect(socket_path);
    *out = new mp_client{std::move(client)};
  });
}

void mp_disconnect(mp_client* client) { delete client; }

int mp_acquire(mp_client* client, const char* name, int64_t wait_ms, mp_model** out) {
  if (out == nullptr) return null_argument("out");
  *out = nullptr;
  if (client == nullptr) return null_argument("client");
  if (name == nullptr) return null_argument("name");
  return guarded([&] {
    modelpool::AcquireOptions options;
    if (wait_ms >= 0) options.wait = std::chrono::milliseconds(wait_ms);
    *out = new mp_model{client->client.acquire(name, options)};
  });
}

int mp_release(mp_model* model) {
  if (model == nullptr) return MP_OK;
  const int rc = guarded([&] { model->model.release(); });
  delete model;
  return rc;
}

const void* mp_model_data(const mp_model* model) {
  return model == nullptr || model->model.bytes().empty() ? nullptr : model->model.bytes().data();
}
uint64_t mp_model_size(const mp_model* model) { return model ? model->model.size() : 0; }
uint64_t mp_model_generation(const mp_model* model) {
  return model ? model->model.generation() : 0;
}
uint64_t mp_model_checksum(const mp_model* model) { return model ? model->model.checksum() : 0; }
mp_format mp_model_format(const mp_model* model) {
  return model ? to_mp_format(model->model.format()) : MP_FORMAT_RAW;
}
const char* mp_model_name(const mp_model* model) {
  return model ? model->model.name().c_str() : "";
}

int mp_model_tensor_count(mp_model* model, size_t* count) {
  if (model == nullptr || count == nullptr) return null_argument("model and count");
  return guarded([&] { *count = model->model.tensors().size(); });
}

int mp_model_tensor_at(mp_model* model, size_t index, mp_tensor* out) {
  if (model == nullptr || out == nullptr) return null_argument("model and out");
  int rc = MP_OK;
  const int thrown = guarded([&] {
    const auto& tensors = model->model.tensors();
    if (index >= tensors.size()) {
      rc = fail(MP_NOT_FOUND, "tensor index " + std::to_string(index) + " is out of range (" +
                                  std::to_string(tensors.size()) + " tensors)");
      return;
    }
    rc = fill_tensor(tensors[index], out);
  });
  return thrown != MP_OK ? thrown : rc;
}

int mp_model_tensor(mp_model* model, const char* name, mp_tensor* out) {
  if (model == nullptr || name == nullptr || out == nullptr) {
    return null_argument("model, name and out");
  }
  int rc = MP_OK;
  const int thrown = guarded([&] {
    // Search the Model's own vector: the strings there outlive this call.
    for (const modelpool::Tensor& t : model->model.tensors()) {
      if (t.name == name) {
        rc = fill_tensor(t, out);
        return;
      }
    }
    rc = fail(MP_NOT_FOUND, "model '" + model->model.name() + "' has no tensor '" + name + "'");
  });
  return thrown != MP_OK ? thrown : rc;
}

int mp_model_metadata_json(mp_model* model, const char** out) {
  if (model == nullptr || out == nullptr) return null_argument("model and out");
  return guarded([&] { *out = model->model.metadata_json().c_str(); });
}

int mp_model_file_count(mp_model* model, size_t* count) {
  if (model == nullptr || count == nullptr) return null_argument("model and count");
  return guarded([&] { *count = model->model.files().size(); });
}

int mp_model_file_at(mp_model* model, size_t index, mp_file* out) {
  if (model == nullptr || out == nullptr) return null_argument("model and out");
  int rc = MP_OK;
  const int thrown = guarded([&] {
    const auto& files = model->model.files();
    if (index >= files.size()) {
      rc = fail(MP_NOT_FOUND, "file index " + std::to_string(index) + " is out of range (" +
                                  std::to_string(files.size()) + " files)");
      return;
    }
    fill_file(model->model, files[index], out);
  });
  return thrown != MP_OK ? thrown : rc;
}

int mp_model_file(mp_model* model, const char* name, mp_file* out) {
  if (model == nullptr || name == nullptr || out == nullptr) {
    return null_argument("model, name and out");
  }
  return guarded([&] {
    // The Model's own FileInfo: its name outlives this call.
    for (const modelpool::FileInfo& f : model->model.files()) {
      if (f.name == name) {
        fill_file(model->model, f, out);
        return;
      }
    }
    (void)model->model.file(name);  // throws kNotFound, naming the model and the file
  });
}

const char* mp_model_commit(const mp_model* model) {
  return model ? model->model.commit().c_str() : "";
}

}  // extern "C"
