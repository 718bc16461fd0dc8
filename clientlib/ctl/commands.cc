// File: clientlib/ctl/commands.cc
#include "clientlib/ctl/commands.hpp"

#include <array>
#include <cerrno>

#include "clientlib/ctl/render.hpp"
#include "clientlib/src/admin_client.hpp"
#include "shm/protocol/messages.hpp"

namespace modelpool::ctl {
namespace {

constexpr std::array<CommandSpec, 10> kCommands{{
    {"stats", false, print_stats},
    {"list", false, print_list},
    {"load", true, print_load},
    {"evict", true, print_evict},
    {"pin", true, print_pin},
    {"unpin", true, print_pin},
    {"clear", false, print_clear},
    {"health", false, print_health},
    {"config", false, print_config},
    {"selfcheck", false, print_selfcheck},
}};

int report_connect_failure(const Options& options, const std::string& socket, const Status& s,
                           int err_no, std::ostream& err) {
  if (!detail::no_broker_running(err_no)) {
    err << "error: " << to_string(s.code()) << ": " << s.message() << "\n";
    return kExitBrokerError;
  }
  const std::string why = err_no == ECONNREFUSED ? "nothing listens on " : "no socket at ";
  if (options.socket.empty()) {
    err << "no modelpool broker is running for pool '" << pool_name(options) << "' (" << why
        << socket << ")\n";
  } else {
    err << "no modelpool broker is running at " << socket
        << (err_no == ECONNREFUSED ? " (nothing listens on it)\n" : " (no such socket)\n");
  }
  return kExitNoBroker;
}

// `list` pages (offset/limit): fetch every page and merge the rows, so that
// the output (and --json) holds the whole pool.
Result<nlohmann::json> list_all(detail::AdminClient& admin) {
  nlohmann::json rows = nlohmann::json::array();
  nlohmann::json reply;
  std::uint64_t offset = 0;
  for (int page = 0; page < 100000; ++page) {
    nlohmann::json fields = nlohmann::json::object();
    if (offset > 0) fields["offset"] = offset;
    auto r = admin.call("list", std::move(fields));
    if (!r.ok()) return r;
    reply = std::move(r).value();
    if (reply.contains("models") && reply["models"].is_array()) {
      for (auto& row : reply["models"]) rows.push_back(std::move(row));
    }
    const std::uint64_t next = json_u64(reply, "next_offset");
    if (next <= offset || !reply.contains("models") || reply["models"].empty()) break;
    offset = next;
  }
  reply["models"] = std::move(rows);
  reply.erase("next_offset");
  return reply;
}

}  // namespace

const CommandSpec* find_command(std::string_view name) {
  for (const CommandSpec& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

int run(const Options& options, std::ostream& out, std::ostream& err) {
  const CommandSpec* spec = find_command(options.command);
  if (spec == nullptr) {
    err << "modelpoolctl: unknown command '" << options.command << "'\n";
    return kExitUsage;
  }
  const std::string socket = admin_socket(options);
  int err_no = 0;
  auto admin = detail::AdminClient::connect(socket, options.timeout, &err_no);
  if (!admin.ok()) return report_connect_failure(options, socket, admin.status(), err_no, err);

  nlohmann::json fields = nlohmann::json::object();
  if (spec->takes_model) fields = proto::to_json(proto::ModelRequest{options.model, options.pin});
  auto reply = spec->name == "list" ? list_all(*admin) : admin->call(spec->name, std::move(fields));
  if (!reply.ok()) {
    err << "error: " << to_string(reply.status().code()) << ": " << reply.status().message()
        << "\n";
    return kExitBrokerError;
  }
  if (options.json) {
    out << reply->dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    // selfcheck's verdict is the exit status in both modes.
    return spec->name == "selfcheck" && !selfcheck_passed(*reply) ? kExitBrokerError : kExitOk;
  }
  return spec->print(*reply, out);
}

}  // namespace modelpool::ctl
