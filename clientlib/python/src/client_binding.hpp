// File: clientlib/python/src/client_binding.hpp
//
// modelpool.Client: a connection to a broker's worker socket. Connecting and
// acquiring run with the GIL released, so other Python threads run while a
// call waits for the broker (an acquire can wait for a load, or for room).
// One Client may be used from several threads; close() while another thread
// is inside acquire() is safe (that acquire finishes on its own reference).
#ifndef MODELPOOL_CLIENTLIB_PYTHON_SRC_CLIENT_BINDING_HPP_
#define MODELPOOL_CLIENTLIB_PYTHON_SRC_CLIENT_BINDING_HPP_

#include <pybind11/pybind11.h>

namespace modelpool::python {

void bind_client(pybind11::module_& m);

}  // namespace modelpool::python

#endif  // MODELPOOL_CLIENTLIB_PYTHON_SRC_CLIENT_BINDING_HPP_
