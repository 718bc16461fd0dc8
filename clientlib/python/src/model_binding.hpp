// File: clientlib/python/src/model_binding.hpp
//
// modelpool.Model: one acquired model, and the read-only views it exports
// (memoryview, numpy arrays; torch tensors are built on those).
//
// Lifetime: the C++ Model (the broker reference and the mapping) is owned
// by a shared_ptr that the Python Model and every exported view share; each
// view's base object (`_Span`) holds one. release() / __exit__ close the
// Python Model - no new views - and drop its share; the broker reference
// and the mapping go when the last share goes: at once when no view is
// alive, else when the last view is collected. So a view never outlives
// its mapping, and a release never waits for the views.
//
// Threads: every method runs with the GIL held; the broker round trip of a
// release (explicit, or by the last view being collected) runs with the GIL
// released, on a Model no Python object can reach any more.
#ifndef MODELPOOL_CLIENTLIB_PYTHON_SRC_MODEL_BINDING_HPP_
#define MODELPOOL_CLIENTLIB_PYTHON_SRC_MODEL_BINDING_HPP_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "modelpool/client.hpp"

namespace modelpool::python {

namespace py = pybind11;

class PyModel {
 public:
  explicit PyModel(Model model);
  PyModel(PyModel&&) noexcept = default;
  PyModel& operator=(PyModel&&) = delete;
  PyModel(const PyModel&) = delete;
  PyModel& operator=(const PyModel&) = delete;
  ~PyModel();  // with the GIL held (pybind11 dealloc)

  // Views; each throws StaleHandle once the Model is closed.
  py::memoryview bytes() const;
  py::list files() const;  // [{name, size, format, weights}]
  py::memoryview file(std::string_view name) const;
  py::list tensor_names() const;
  // `writeable_flag` leaves numpy's WRITEABLE flag set (the pages stay
  // PROT_READ): only for handing the array to torch, see _torch.py.
  py::array tensor(std::string_view name, bool writeable_flag) const;
  py::dict tensors() const;
  py::dict tensor_info(std::string_view name) const;
  std::string metadata_json() const;

  // Closes this object; see the file comment. Throws the broker's refusal
  // when the reference is dropped at once (it is dropped locally anyway).
  void release();
  bool closed() const { return !model_; }
  bool held() const { return !weak_.expired(); }  // broker reference still held
  long exports() const;                           // live views sharing the Model

  const std::string& name() const { return name_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t generation() const { return generation_; }
  std::string checksum() const;  // 16 hex digits, as on the wire
  std::uint64_t handle() const;  // 0 once closed
  bool cached() const { return cached_; }
  std::string_view format() const;
  const std::string& commit() const { return commit_; }
  std::string repr() const;

 private:
  const Model& open() const;
  py::array make_array(const Tensor& t, bool writeable_flag) const;

  std::shared_ptr<Model> model_;  // null once closed
  std::weak_ptr<Model> weak_;
  // Copied at acquire, readable after close.
  std::string name_;
  std::uint64_t size_ = 0;
  std::uint64_t generation_ = 0;
  std::uint64_t checksum_ = 0;
  std::string commit_;
  bool cached_ = false;
  Format format_ = Format::raw;
};

void bind_model(py::module_& m);

}  // namespace modelpool::python

#endif  // MODELPOOL_CLIENTLIB_PYTHON_SRC_MODEL_BINDING_HPP_
