// File: clientlib/ctl/main.cc
//
// modelpoolctl: the admin CLI of a modelpool broker. Parses the command line
// and hands over to run() (commands.hpp). Exit status: 0 ok, 1 the broker
// refused or failed, 2 usage error, 3 no broker is running.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "clientlib/ctl/commands.hpp"
#include "clientlib/ctl/options.hpp"

int main(int argc, char** argv) {
  using namespace modelpool::ctl;  // NOLINT(google-build-using-namespace): main only
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto options = parse_options(args);
    if (!options.ok()) {
      std::cerr << "modelpoolctl: " << options.status().message()
                << "\n(modelpoolctl --help lists the commands and options)\n";
      return kExitUsage;
    }
    if (options->help) {
      std::cout << usage();
      return kExitOk;
    }
    const int code = run(*options, std::cout, std::cerr);
    std::cout.flush();
    return code;
  } catch (const std::exception& e) {
    std::cerr << "modelpoolctl: " << e.what() << "\n";
    return kExitBrokerError;
  }
}
