// File: tests/fuzz/fuzz_replay_main.cc
//
// A main() for a libFuzzer target built without libFuzzer (GCC, the regular
// build): runs LLVMFuzzerTestOneInput on every file named, and on every file
// of every directory named, in order. With --mutate-seconds S it then keeps
// mutating those inputs (byte flips, inserts, deletions, splices of two
// inputs, tokens of a dictionary of the protocol's words, fields inserted
// into objects, numbers replaced by boundary values) for S seconds,
// seeded by --seed (default 1). A crash or an abort is the failure, as under
// libFuzzer; a signal handler writes the input that did it to ./crash-replay.
// Prints "Done N runs" (as libFuzzer does) and exits 0.
//   modelpool_fuzz_dispatch DIR...                       replay
//   modelpool_fuzz_dispatch --mutate-seconds 15 DIR...   replay, then mutate
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

constexpr const char* kTokens[] = {R"("op":)",
                                   R"("acquire")",
                                   R"("release")",
                                   R"("list")",
                                   R"("stats")",
                                   R"("evict")",
                                   R"("pin")",
                                   R"("unpin")",
                                   R"("clear")",
                                   R"("selfcheck")",
                                   R"("config")",
                                   R"("load")",
                                   R"("hello")",
                                   R"("health")",
                                   R"("flush")",
                                   R"("model":)",
                                   R"("a.bin")",
                                   R"("big.bin")",
                                   R"("handle":)",
                                   R"("offset":)",
                                   R"("limit":)",
                                   R"("wait_ms":)",
                                   R"("id":)",
                                   "18446744073709551615",
                                   "18446744073709551616",
                                   "-1",
                                   "1e300",
                                   "null",
                                   "true",
                                   "[]",
                                   "{}",
                                   R"("\u0000")",
                                   "\n!",
                                   "!"};

// Fields and values for the structure-aware mutations: a field inserted
// before a '}', or a number replaced by a boundary value.
constexpr const char* kKeys[] = {"model", "handle", "offset", "limit", "wait_ms", "id", "pin"};
constexpr const char* kValues[] = {"0",
                                   "-1",
                                   "4294967296",
                                   "9223372036854775808",
                                   "18446744073709551615",
                                   "18446744073709551616",
                                   "1e300",
                                   "null",
                                   "true",
                                   R"("a.bin")",
                                   R"("big.bin")",
                                   "[]"};

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const std::string* current = nullptr;  // the input being run, for on_crash

// Async-signal-safe: open, write, then die of the same signal.
void on_crash(int sig) {
  if (current != nullptr) {
    const int fd = ::open("crash-replay", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, current->data(), current->size());
      ::close(fd);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void run_one(const std::string& input) {
  current = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

std::string mutate(std::string s, const std::vector<std::string>& pool, std::mt19937_64& rng) {
  auto below = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  const int steps = 1 + static_cast<int>(below(4));
  for (int i = 0; i < steps; ++i) {
    switch (below(8)) {
      case 0:
        if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1 << below(8));
        break;
      case 1:
        s.insert(below(s.size() + 1), 1, static_cast<char>(rng()));
        break;
      case 2:
        if (!s.empty()) s.erase(below(s.size()), 1 + below(8));
        break;
      case 3: {
        const std::string& o = pool[below(pool.size())];
        const std::size_t at = below(o.size() + 1);
        s.insert(below(s.size() + 1), o.substr(at, below(o.size() - at + 1)));
        break;
      }
      case 4: {
        std::size_t at = s.find('}', below(s.size() + 1));
        if (at == std::string::npos) at = s.rfind('}');
        if (at == std::string::npos) break;
        s.insert(at, std::string(",\"") + kKeys[below(std::size(kKeys))] +
                         "\":" + kValues[below(std::size(kValues))]);
        break;
      }
      case 5: {
        const std::size_t at = s.find_first_of("-0123456789", below(s.size() + 1));
        if (at == std::string::npos) break;
        const std::size_t end = s.find_first_not_of("-+.0123456789eE", at);
        s.replace(at, end == std::string::npos ? std::string::npos : end - at,
                  kValues[below(std::size(kValues))]);
        break;
      }
      default:
        s.insert(below(s.size() + 1), kTokens[below(std::size(kTokens))]);
    }
  }
  if (s.size() > 8192) s.resize(8192);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  std::uint64_t seed = 1;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mutate-seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::filesystem::is_directory(a)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) inputs.push_back(read(f));
    } else {
      inputs.push_back(read(a));
    }
  }
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, on_crash);
  std::uint64_t runs = 0;
  for (const std::string& in : inputs) {
    run_one(in);
    ++runs;
  }
  if (seconds > 0 && !inputs.empty()) {
    std::mt19937_64 rng(seed);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      run_one(mutate(inputs[rng() % inputs.size()], inputs, rng));
      ++runs;
    }
  }
  std::printf("Done %llu runs\n", static_cast<unsigned long long>(runs));
  return 0;
}
