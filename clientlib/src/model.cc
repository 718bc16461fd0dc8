// File: clientlib/src/model.cc
//
// modelpool::Model: accessors over detail::ModelState. A moved-from Model
// reads as an empty, released one.
#include <utility>

#include "clientlib/src/model_state.hpp"
#include "modelpool/client.hpp"

namespace modelpool {
namespace {

[[noreturn]] void throw_status(const Status& s) { throw Error(s.code(), s.message()); }

}  // namespace

Model::Model(std::unique_ptr<detail::ModelState> state) : state_(std::move(state)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const detail::ModelState& Model::state() const {
  static const detail::ModelState kEmpty;
  return state_ ? *state_ : kEmpty;
}

std::span<const std::byte> Model::bytes() const {
  const auto& s = state();
  return s.released ? std::span<const std::byte>() : s.bytes;
}
std::uint64_t Model::size() const { return state().size; }
std::uint64_t Model::generation() const { return state().generation; }
std::uint64_t Model::checksum() const { return state().checksum; }
std::uint64_t Model::handle() const {
  const auto& s = state();
  return s.lease ? s.lease->handle.load() : 0;
}
const std::string& Model::name() const { return state().name; }
bool Model::cached() const { return state().cached; }
Format Model::format() const { return state().format; }

const std::vector<FileInfo>& Model::files() const { return state().files; }
const std::string& Model::commit() const { return state().commit; }

std::span<const std::byte> Model::file(std::string_view name) const {
  const auto& s = state();
  if (s.released) throw Error(ErrorCode::kStaleHandle, "model '" + s.name + "' was released");
  for (std::size_t i = 0; i < s.files.size(); ++i) {
    if (s.files[i].name == name) return s.file_bytes[i];
  }
  throw Error(ErrorCode::kNotFound,
              "model '" + s.name + "' has no file '" + std::string(name) + "'");
}

const std::vector<Tensor>& Model::tensors() const {
  const auto& s = state();
  if (s.released) {
    throw Error(ErrorCode::kStaleHandle, "model '" + s.name + "' was released");
  }
  s.ensure_parsed();
  if (!s.parse_status.ok()) throw_status(s.parse_status);
  return s.tensors;
}

Tensor Model::tensor(std::string_view name) const {
  for (const Tensor& t : tensors()) {
    if (t.name == name) return t;
  }
  throw Error(ErrorCode::kNotFound,
              "model '" + state().name + "' has no tensor '" + std::string(name) + "'");
}

const std::string& Model::metadata_json() const {
  (void)tensors();  // parses, or throws as tensors() does
  return state().metadata_text_once();
}

std::optional<std::string> Model::metadata(std::string_view key) const {
  (void)tensors();
  return state().metadata_value(key);
}

void Model::release() {
  if (!state_) return;
  if (Status s = state_->release(); !s.ok()) throw_status(s);
}

std::string_view format_name(Format format) noexcept {
  switch (format) {
    case Format::safetensors:
      return "safetensors";
    case Format::gguf:
      return "gguf";
    case Format::raw:
      break;
  }
  return "raw";
}

}  // namespace modelpool
