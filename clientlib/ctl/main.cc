// File: clientlib/ctl/main.cc
//
// modelpoolctl: the admin CLI of a modelpool broker. Parses the command line
// and hands over to run() (commands.hpp). Exit status: 0 ok, 1 the broker
// refused or failed, 2 usage error, 3 no broker is running or it did not
// answer within the timeout. With --json every failure is a JSON object on
// stdout too (commands.hpp).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "clientlib/ctl/commands.hpp"
#include "clientlib/ctl/options.hpp"

int main(int argc, char** argv) {
  using namespace modelpool::ctl;  // NOLINT(google-build-using-namespace): main only
  const std::vector<std::string> args(argv + 1, argv + argc);
  const bool json = wants_json(args);
  try {
    auto options = parse_options(args);
    if (!options.ok()) {
      if (json) print_failure_json({kExitUsage, "usage", options.status().message()}, std::cout);
      std::cerr << "modelpoolctl: " << options.status().message()
                << "\n(modelpoolctl --help lists the commands and options)\n";
      return kExitUsage;
    }
    if (options->help || options->version) {
      std::cout << (options->help ? usage() : version_text());
      return kExitOk;
    }
    const int code = run_watching(*options, std::cout, std::cerr);
    std::cout.flush();
    return code;
  } catch (const std::exception& e) {
    if (json)
      return report_failure(true, {kExitBrokerError, "internal", e.what()}, std::cout, std::cerr);
    std::cerr << "modelpoolctl: " << e.what() << "\n";
    return kExitBrokerError;
  }
}
