// File: clientlib/python/src/model_binding.cc
#include "model_binding.hpp"

#include <Python.h>

#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "array_spec.hpp"

namespace modelpool::python {
namespace {

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

// Drops one share of a Model, with the GIL held. The last share's drop runs
// ~Model - the release's send, and the segment's munmap once the Client
// and its Models are gone - with the GIL released, so other threads run
// meanwhile (not at interpreter exit, when only the finalizing thread may
// run anyway).
void drop_model(std::shared_ptr<Model>& m) noexcept {
  if (m && m.use_count() == 1 && !finalizing()) {
    try {
      const py::gil_scoped_release nogil;
      m.reset();
    } catch (...) {  // NOLINT(bugprone-empty-catch): ~Model does not throw; the GIL call might
    }
  }
  m.reset();
}

// The base object of every exported view: keeps the Model (its broker
// reference and mapping) alive and exports the bytes as a read-only buffer,
// so numpy refuses to make an array on it writeable.
struct Span {
  Span(std::shared_ptr<Model> o, std::span<const std::byte> b) : owner(std::move(o)), bytes(b) {}
  Span(Span&&) noexcept = default;
  Span& operator=(Span&&) = delete;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span() { drop_model(owner); }

  std::shared_ptr<Model> owner;
  std::span<const std::byte> bytes;
};

py::tuple to_tuple(const std::vector<std::int64_t>& v) {
  py::tuple t(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) t[i] = py::int_(v[i]);
  return t;
}

[[noreturn]] void throw_closed(const std::string& name) {
  throw Error(ErrorCode::kStaleHandle, "model '" + name + "' was released");
}

// The weights file of `m` whose bytes hold `data`, and those bytes; a
// tensor's data always lies in one of them.
std::pair<const FileInfo*, std::span<const std::byte>> holder(const Model& m,
                                                              std::span<const std::byte> data) {
  for (const FileInfo& f : m.files()) {
    if (!f.weights) continue;
    const std::span<const std::byte> b = m.file(f.name);
    if (data.data() >= b.data() && data.data() + data.size() <= b.data() + b.size()) {
      return {&f, b};
    }
  }
  return {nullptr, m.bytes()};
}

}  // namespace

PyModel::PyModel(Model model)
    : model_(std::make_shared<Model>(std::move(model))),
      weak_(model_),
      name_(model_->name()),
      size_(model_->size()),
      generation_(model_->generation()),
      checksum_(model_->checksum()),
      commit_(model_->commit()),
      cached_(model_->cached()),
      format_(model_->format()) {}

PyModel::~PyModel() { drop_model(model_); }

const Model& PyModel::open() const {
  if (!model_) throw_closed(name_);
  return *model_;
}

py::memoryview PyModel::bytes() const {
  const std::span<const std::byte> b = open().bytes();
  return py::memoryview(py::cast(Span(model_, b)));
}

py::list PyModel::files() const {
  py::list out;
  for (const FileInfo& f : open().files()) {
    py::dict d;
    d["name"] = f.name;
    d["size"] = f.size;
    d["format"] = format_name(f.format);
    d["weights"] = f.weights;
    out.append(d);
  }
  return out;
}

py::memoryview PyModel::file(std::string_view name) const {
  const std::span<const std::byte> b = open().file(name);
  return py::memoryview(py::cast(Span(model_, b)));
}

py::list PyModel::tensor_names() const {
  py::list names;
  for (const Tensor& t : open().tensors()) names.append(py::str(t.name));
  return names;
}

py::array PyModel::make_array(const Tensor& t, bool writeable_flag) const {
  const ArraySpec spec = array_spec(format_, t.dtype, t.shape, t.data.size());
  const std::vector<py::ssize_t> shape(spec.shape.begin(), spec.shape.end());
  py::object base = py::cast(Span(model_, t.data));
  // With a base, pybind11 wraps `data` (no copy) and sets WRITEABLE.
  py::array a(py::dtype(spec.typestr), shape, std::vector<py::ssize_t>{}, t.data.data(), base);
  if (!writeable_flag) a.attr("setflags")(py::arg("write") = false);
  return a;
}

py::array PyModel::tensor(std::string_view name, bool writeable_flag) const {
  return make_array(open().tensor(name), writeable_flag);
}

py::dict PyModel::tensors() const {
  py::dict out;
  for (const Tensor& t : open().tensors()) out[py::str(t.name)] = make_array(t, false);
  return out;
}

py::dict PyModel::tensor_info(std::string_view name) const {
  const Model& m = open();
  const Tensor t = m.tensor(name);
  const ArraySpec spec = array_spec(format_, t.dtype, t.shape, t.data.size());
  py::dict d;
  d["name"] = t.name;
  d["dtype"] = t.dtype;
  d["shape"] = to_tuple(spec.shape);
  d["file_shape"] = to_tuple(t.shape);
  d["numpy_dtype"] = py::dtype(spec.typestr);
  d["nbytes"] = t.data.size();
  const auto [file, file_bytes] = holder(m, t.data);
  d["file"] = file != nullptr ? file->name : m.name();
  d["offset"] = t.data.data() - file_bytes.data();
  return d;
}

std::string PyModel::metadata_json() const { return open().metadata_json(); }

void PyModel::release() {
  if (!model_) return;
  std::shared_ptr<Model> m = std::move(model_);
  if (m.use_count() > 1) return;  // the last view releases it
  py::gil_scoped_release nogil;
  m->release();  // throws the broker's refusal; released locally either way
}

long PyModel::exports() const { return weak_.use_count() - (model_ ? 1 : 0); }

std::string PyModel::checksum() const {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex(16, '0');
  for (std::size_t i = 0; i < hex.size(); ++i) hex[i] = kHex[(checksum_ >> (60 - 4 * i)) & 0xf];
  return hex;
}

std::uint64_t PyModel::handle() const { return model_ ? model_->handle() : 0; }

std::string_view PyModel::format() const { return format_name(format_); }

std::string PyModel::repr() const {
  std::string state = closed() ? (held() ? "closed, views alive" : "released") : "open";
  return "<modelpool.Model '" + name_ + "' " + std::string(format()) + ", " +
         std::to_string(size_) + " bytes, generation " + std::to_string(generation_) + ", " +
         state + ">";
}

void bind_model(py::module_& m) {
  py::class_<Span>(m, "_Span", py::buffer_protocol(),
                   "Keeps a Model's bytes mapped; the base of every view it exports.")
      .def_buffer([](Span& s) {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): exported read-only
        auto* p = const_cast<std::byte*>(s.bytes.data());
        const auto n = static_cast<py::ssize_t>(s.bytes.size());
        return py::buffer_info(p, 1, "B", 1, {n}, {py::ssize_t{1}}, /*readonly=*/true);
      });

  py::class_<PyModel>(m, "Model", R"doc(
A model acquired from the pool: read-only, zero-copy views of its bytes and
tensors. Use it as a context manager, or call release(). Views (memoryviews,
numpy arrays, torch tensors) keep the mapping and the broker reference alive
after release() until the last of them is collected; see docs/python.md.)doc")
      .def("bytes", &PyModel::bytes,
           "The model's bytes (a repository's: its first weights file's): a read-only "
           "memoryview into the pool.")
      .def("files", &PyModel::files,
           "[{name, size, format, weights}]: weights files first (index order), then the "
           "small files; one entry for a model of one file.")
      .def("file", &PyModel::file, py::arg("name"),
           "The bytes of file `name` (as files() names it): a read-only memoryview into the "
           "pool. NotFound if the model has no such file.")
      .def("tensor_names", &PyModel::tensor_names, "Tensor names in file order.")
      .def(
          "tensor",
          [](const PyModel& self, std::string_view name) { return self.tensor(name, false); },
          py::arg("name"),
          "The tensor `name` as a read-only numpy array sharing the pool's memory.")
      .def(
          "_torch_array",
          [](const PyModel& self, std::string_view name) { return self.tensor(name, true); },
          py::arg("name"), "tensor(name) with numpy's WRITEABLE flag left set, for torch only.")
      .def("tensors", &PyModel::tensors, "{name: read-only numpy array} in file order.")
      .def("tensor_info", &PyModel::tensor_info, py::arg("name"),
           "dtype (the file's spelling), shape (numpy order), file_shape, numpy_dtype, "
           "nbytes, file (the weights file holding it), offset (into file(file))")
      .def("metadata_json", &PyModel::metadata_json,
           "safetensors __metadata__ / GGUF key-values as JSON text.")
      .def_property_readonly(
          "metadata",
          [](const PyModel& self) {
            return py::module_::import("json").attr("loads")(self.metadata_json());
          })
      .def(
          "state_dict",
          [](py::object self) {
            return py::module_::import("modelpool._torch").attr("state_dict")(self);
          },
          "{name: torch.Tensor} sharing the pool's memory (needs torch).")
      .def("release", &PyModel::release, "Closes the Model; see the class doc.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyModel& self, const py::args&) { self.release(); })
      .def_property_readonly("closed", &PyModel::closed)
      .def_property_readonly("held", &PyModel::held,
                             "True while the broker reference is held (by the Model or a view).")
      .def_property_readonly("exports", &PyModel::exports, "Views alive that share the Model.")
      .def_property_readonly("name", &PyModel::name)
      .def_property_readonly("size", &PyModel::size)
      .def_property_readonly("generation", &PyModel::generation)
      .def_property_readonly("checksum", &PyModel::checksum)
      .def_property_readonly("handle", &PyModel::handle)
      .def_property_readonly("cached", &PyModel::cached)
      .def_property_readonly("format", &PyModel::format)
      .def_property_readonly("commit", &PyModel::commit,
                             "The commit an hf: name resolved to; \"\" for other names.")
      .def("__repr__", &PyModel::repr);
}

}  // namespace modelpool::python
