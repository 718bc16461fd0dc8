// File: clientlib/python/src/module.cc
//
// The extension module modelpool._modelpool: Client, Model, and the
// translation of modelpool::Error into the exception classes of
// modelpool/errors.py (one per protocol code, all subclasses of
// modelpool.Error, each carrying .code and .message).
#include <pybind11/pybind11.h>

#include <exception>
#include <string>

#include "client_binding.hpp"
#include "model_binding.hpp"
#include "modelpool/client.hpp"

namespace modelpool::python {
namespace {

// Sets the Python error for `e`: modelpool.errors.error_class(code)(message, code).
void raise_error(const Error& e) {
  try {
    const py::str code(std::string(e.code_name()));
    py::object cls = py::module_::import("modelpool.errors").attr("error_class")(code);
    py::object exc = cls(py::str(e.what()), code);
    PyErr_SetObject(cls.ptr(), exc.ptr());
  } catch (py::error_already_set& err) {
    err.restore();  // the package is broken: raise why
  }
}

}  // namespace

void init_module(py::module_& m) {
  m.doc() = "modelpool client: zero-copy views of models in a modelpool broker's shared memory";
  m.attr("__version__") = MODELPOOL_VERSION;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      raise_error(e);
    }
  });
  bind_model(m);
  bind_client(m);
}

}  // namespace modelpool::python

PYBIND11_MODULE(_modelpool, m) { modelpool::python::init_module(m); }
