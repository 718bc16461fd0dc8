// File: clientlib/src/model_state.cc
#include "clientlib/src/model_state.hpp"

#include <utility>

#include "shm/format/tensor_index.hpp"

namespace modelpool::detail {
namespace {

Format format_from_wire(std::string_view f) {
  if (f == "safetensors") return Format::safetensors;
  if (f == "gguf") return Format::gguf;
  return Format::raw;  // the connection admits only the three names
}

Result<format::TensorIndex> parse_index(Format f, std::span<const std::byte> bytes,
                                        const format::MetadataFilter& metadata) {
  switch (f) {
    case Format::safetensors:
      return format::parse_safetensors(bytes);
    case Format::gguf:
      return format::parse_gguf(bytes, metadata);
    case Format::raw:
      break;
  }
  return format::TensorIndex{};
}

}  // namespace

ModelState::ModelState(std::shared_ptr<Connection> c, Acquired acquired)
    : connection(std::move(c)),
      lease(std::move(acquired.lease)),
      segment(std::move(acquired.segment)),
      bytes(acquired.bytes),
      name(std::move(acquired.reply.model)),
      format(format_from_wire(acquired.reply.format)),
      cached(acquired.reply.cached),
      size(acquired.reply.size),
      generation(acquired.reply.generation),
      checksum(acquired.reply.checksum),
      released(false) {
  commit = std::move(acquired.reply.commit);
  if (acquired.reply.files.empty()) {
    files.push_back(FileInfo{name, size, format, true});
    file_bytes.push_back(bytes);
    return;
  }
  for (std::size_t i = 0; i < acquired.reply.files.size(); ++i) {
    const proto::FileRef& f = acquired.reply.files[i];
    files.push_back(FileInfo{f.name, f.size, format_from_wire(f.format), f.weights});
    file_bytes.push_back(acquired.files.at(i));
  }
}

ModelState::~ModelState() {
  try {
    (void)release();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

Status ModelState::release() {
  if (released) return {};
  released = true;
  bytes = {};
  file_bytes.assign(file_bytes.size(), {});
  segment.reset();
  if (!connection || !lease) return {};
  return connection->release(lease);
}

void ModelState::ensure_parsed() const {
  std::call_once(parse_once, [this] {
    // GGUF metadata is validated here but built only when asked for (see
    // metadata_text_once / metadata_value): a 16M-entry vocabulary array
    // would otherwise cost every worker hundreds of MiB.
    bool first = true;
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (!files[i].weights) continue;
      const std::span<const std::byte> data = file_bytes[i];
      const std::string where = files.size() == 1 ? name : name + "/" + files[i].name;
      auto index = parse_index(files[i].format, data, format::MetadataFilter::none());
      if (!index.ok()) {
        parse_status =
            error(index.status().code(), "model '" + where + "': " + index.status().message());
        tensors.clear();
        return;
      }
      for (format::TensorInfo& t : index->tensors) {
        if (t.offset > data.size() || t.size > data.size() - t.offset) {
          parse_status = error(ErrorCode::kLoadFailed, "model '" + where + "': tensor '" + t.name +
                                                           "' lies outside the file");
          tensors.clear();
          return;
        }
        tensors.push_back(Tensor{std::move(t.name), std::move(t.dtype), std::move(t.shape),
                                 data.subspan(t.offset, t.size)});
      }
      if (first && files[i].format == Format::safetensors) metadata_text = dump(index->metadata);
      first = false;
    }
  });
}

std::string ModelState::dump(const nlohmann::json& metadata) {
  if (!metadata.is_object()) return "{}";
  return metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const std::string& ModelState::metadata_text_once() const {
  ensure_parsed();
  if (!parse_status.ok() || format != Format::gguf) return metadata_text;
  std::call_once(metadata_once, [this] {
    // The bytes parsed once already: this parse cannot fail.
    auto index = parse_index(format, bytes, {});
    if (index.ok()) metadata_text = dump(index->metadata);
  });
  return metadata_text;
}

std::optional<std::string> ModelState::metadata_value(std::string_view key) const {
  ensure_parsed();
  if (!parse_status.ok()) return std::nullopt;
  auto index = parse_index(format, bytes, format::MetadataFilter::only(std::string(key)));
  if (!index.ok()) return std::nullopt;
  auto it = index->metadata.find(key);
  if (it == index->metadata.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace modelpool::detail
