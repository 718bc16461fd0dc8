// File: clientlib/python/src/client_binding.cc
#include "client_binding.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "model_binding.hpp"
#include "modelpool/client.hpp"

namespace modelpool::python {
namespace {

// Seconds from Python as milliseconds; ValueError names `what` when they are
// negative or not finite.
std::chrono::milliseconds to_millis(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw py::value_error(std::string(what) + " must be a non-negative number of seconds");
  }
  constexpr double kMaxSeconds = 1e12;  // ~31,700 years: keeps the ms count in range
  return std::chrono::milliseconds(std::llround(std::min(seconds, kMaxSeconds) * 1e3));
}

class PyClient {
 public:
  PyClient(const std::optional<std::string>& socket, std::optional<double> reconnect_timeout_s) {
    ClientOptions options;
    if (reconnect_timeout_s)
      options.reconnect_timeout = to_millis(*reconnect_timeout_s, "reconnect_timeout");
    std::optional<Client> c;
    {
      const py::gil_scoped_release nogil;
      c.emplace(socket ? Client::connect(*socket, options) : Client::connect(options));
    }
    client_ = std::make_shared<Client>(std::move(*c));
  }

  PyModel acquire(const std::string& name, std::optional<double> wait_s, bool populate) {
    std::shared_ptr<Client> c = open();
    AcquireOptions options;
    if (wait_s) {
      options.wait = to_millis(*wait_s, "wait");
    }
    options.populate = populate;
    std::optional<Model> m;
    {
      const py::gil_scoped_release nogil;
      m.emplace(c->acquire(name, options));
    }
    return PyModel(std::move(*m));
  }

  // Drops this object's connection; Models acquired from it stay valid.
  void close() { client_.reset(); }
  bool closed() const { return !client_; }
  std::string pool() const { return open()->pool(); }
  std::string segment_path() const { return open()->segment_path(); }
  std::uint64_t page_size() const { return open()->page_size(); }

 private:
  std::shared_ptr<Client> open() const {
    if (!client_) throw Error(ErrorCode::kUnavailable, "this Client was closed");
    return client_;
  }

  std::shared_ptr<Client> client_;
};

}  // namespace

void bind_client(py::module_& m) {
  py::class_<PyClient>(m, "Client", R"doc(
A connection to a modelpool broker's worker socket.

Client() connects to $MODELPOOL_SOCKET if set, else RUN_DIR/modelpool.sock
(RUN_DIR: $MODELPOOL_RUN_DIR, else $XDG_RUNTIME_DIR/modelpool, else
/tmp/modelpool-$UID); Client(socket=PATH) connects to PATH. Raises
modelpool.Unavailable when no broker answers. Usable from several threads.
reconnect_timeout: seconds acquire() keeps trying to reach a broker that
restarted (None: $MODELPOOL_RECONNECT_TIMEOUT_MS as it is now, else 10 s;
0: one attempt).)doc")
      .def(py::init<const std::optional<std::string>&, std::optional<double>>(),
           py::arg("socket") = py::none(), py::kw_only(), py::arg("reconnect_timeout") = py::none())
      .def("acquire", &PyClient::acquire, py::arg("model"), py::kw_only(),
           py::arg("wait") = py::none(), py::arg("populate") = false, R"doc(
Acquires `model` (a name below the broker's models directory: a file or a
repository directory; or hf:ORG/NAME[@REV], a snapshot in the broker's
Hugging Face cache), loading it first if needed; blocks (without the GIL)
until its bytes are resident.
wait: seconds the broker may wait for room when the pool is full (None: the
broker's default). populate: fault every page in before returning.
Raises NotFound, InvalidName, Forbidden, TooLarge, PoolFull, LoadFailed,
ShuttingDown or Unavailable (all modelpool.Error).)doc")
      .def("close", &PyClient::close, "Drops the connection; acquired Models stay valid.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyClient& self, const py::args&) { self.close(); })
      .def_property_readonly("closed", &PyClient::closed)
      .def_property_readonly("pool", &PyClient::pool)
      .def_property_readonly("segment_path", &PyClient::segment_path)
      .def_property_readonly("page_size", &PyClient::page_size);
}

}  // namespace modelpool::python
