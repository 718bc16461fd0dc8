// File: clientlib/ctl/commands.cc
#include "clientlib/ctl/commands.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

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

using Clock = std::chrono::steady_clock;
using Timeout = std::optional<std::chrono::milliseconds>;

std::string millis_text(std::chrono::milliseconds t) {
  return t.count() % 1000 == 0 ? std::to_string(t.count() / 1000) + " s"
                               : std::to_string(t.count()) + " ms";
}

Failure timeout_failure(const std::string& socket, std::chrono::milliseconds limit) {
  return {kExitNoBroker, "timeout",
          "the broker at " + socket + " did not answer within " + millis_text(limit) +
              " (it may be hung or overloaded; --timeout sets the limit, 0 for none)",
          false};
}

Failure connect_failure(const Options& options, const std::string& socket, const Status& s,
                        int err_no, Timeout timeout) {
  // SO_SNDTIMEO bounds connect(): EAGAIN when the listener's backlog stays full.
  if (timeout && (err_no == EAGAIN || err_no == EWOULDBLOCK)) {
    return timeout_failure(socket, *timeout);
  }
  if (!detail::no_broker_running(err_no)) {
    return {kExitBrokerError, std::string(to_string(s.code())), s.message()};
  }
  const std::string why = err_no == ECONNREFUSED ? "nothing listens on " : "no socket at ";
  if (options.socket.empty()) {
    return {kExitNoBroker, "unavailable",
            "no modelpool broker is running for pool '" + pool_name(options) + "' (" + why +
                socket + ")",
            false};
  }
  return {kExitNoBroker, "unavailable",
          "no modelpool broker is running at " + socket +
              (err_no == ECONNREFUSED ? " (nothing listens on it)" : " (no such socket)"),
          false};
}

// A failed call: the broker's refusal (exit 1), or no answer within the
// timeout (exit 3). The channel reports a receive or send timeout as
// kUnavailable; having waited the whole limit is what tells it from a
// closed connection.
Failure call_failure(const std::string& socket, const Status& s, Timeout timeout,
                     Clock::time_point started) {
  if (s.code() == ErrorCode::kUnavailable && timeout && Clock::now() - started >= *timeout) {
    return timeout_failure(socket, *timeout);
  }
  return {kExitBrokerError, std::string(to_string(s.code())), s.message()};
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

void print_failure_json(const Failure& f, std::ostream& out) {
  const nlohmann::json j = {{"ok", false}, {"error", {{"code", f.code}, {"message", f.message}}}};
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

int report_failure(bool json, const Failure& f, std::ostream& out, std::ostream& err) {
  if (json) print_failure_json(f, out);
  if (f.code_in_text) err << "error: " << f.code << ": ";
  err << f.message << "\n";
  return f.exit_code;
}

namespace {

// Sends the command and returns the broker's reply fields, or why not. A
// load waits for the load itself without a limit unless --timeout was
// given; a health probe within the timeout first tells a hung broker from
// a long load.
Result<nlohmann::json> request(const Options& options, const CommandSpec& spec,
                               const std::string& socket, Failure* failure) {
  const bool unbounded_load = spec.name == "load" && !options.timeout_given;
  if (unbounded_load) {
    Options probe = options;
    probe.command = "health";
    probe.timeout_given = true;
    auto alive = request(probe, *find_command("health"), socket, failure);
    if (!alive.ok()) return alive;
  }
  const Timeout timeout = unbounded_load ? std::nullopt : options.timeout;
  const Clock::time_point started = Clock::now();
  int err_no = 0;
  auto admin = detail::AdminClient::connect(socket, timeout, &err_no);
  if (!admin.ok()) {
    *failure = connect_failure(options, socket, admin.status(), err_no, timeout);
    return admin.status();
  }
  nlohmann::json fields = nlohmann::json::object();
  if (spec.takes_model) fields = proto::to_json(proto::ModelRequest{options.model, options.pin});
  auto reply = spec.name == "list" ? list_all(*admin) : admin->call(spec.name, std::move(fields));
  if (!reply.ok()) *failure = call_failure(socket, reply.status(), timeout, started);
  return reply;
}

}  // namespace

int run(const Options& options, std::ostream& out, std::ostream& err) {
  const CommandSpec* spec = find_command(options.command);
  if (spec == nullptr) {
    return report_failure(
        options.json, {kExitUsage, "usage", "unknown command '" + options.command + "'"}, out, err);
  }
  Failure failure{kExitBrokerError, "internal", "no reply"};
  auto reply = request(options, *spec, admin_socket(options), &failure);
  if (!reply.ok()) return report_failure(options.json, failure, out, err);
  if (options.json) {
    out << reply->dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    // selfcheck's verdict is the exit status in both modes.
    return spec->name == "selfcheck" && !selfcheck_passed(*reply) ? kExitBrokerError : kExitOk;
  }
  return spec->print(*reply, out);
}

int run_watching(const Options& options, std::ostream& out, std::ostream& err) {
  if (!options.watch) return run(options, out, err);
  const bool tty = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  for (std::uint64_t i = 1;; ++i) {
    if (tty) out << "\033[H\033[2J";  // home, clear: each print replaces the last
    const int code = run(options, out, err);
    out.flush();
    if (code != kExitOk || (options.count != 0 && i >= options.count)) return code;
    std::this_thread::sleep_for(*options.watch);  // the refresh interval asked for
  }
}

}  // namespace modelpool::ctl
