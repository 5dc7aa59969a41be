// cafraft-lincheck: checks a saved history by hand, e.g. one a failing nemesis run left behind.
//
//   cafraft-lincheck [--timeout-ms N] [--initial VALUE] [--quiet] FILE
//
// FILE holds one operation a line in the saved-history format described at the top of
// tests/lin/linearizability.hpp (tab-separated: client key kind value expected read_value
// result invoke complete; '#' lines are comments); `-` reads standard input. Every key starts
// absent unless --initial gives a value. Prints the verdict, counts and, unless the history is
// linearizable or --quiet is given, the explanation (the failing key's operations).
//
// Exit status: 0 linearizable, 1 not linearizable, 2 timed out or bad input/usage.
#include "tests/lin/linearizability.hpp"

#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

namespace {

constexpr int exit_linearizable = 0;
constexpr int exit_not_linearizable = 1;
constexpr int exit_other = 2;

int usage(const char* why) {
  std::cerr << "cafraft-lincheck: " << why << "\n"
            << "usage: cafraft-lincheck [--timeout-ms N] [--initial VALUE] [--quiet] FILE|-\n"
            << "  FILE: one operation a line, tab-separated fields\n"
            << "    client key kind value expected read_value result invoke complete\n"
            << "  (format: tests/lin/linearizability.hpp). Exit status: 0 linearizable,\n"
            << "  1 not linearizable, 2 timed out or bad input.\n";
  return exit_other;
}

} // namespace

int main(int argc, char** argv) {
  namespace lin = cafraft::lin;
  lin::check_options opts;
  bool quiet = false;
  const char* path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage("checks a saved history for linearizability");
      return exit_other;
    }
    if (arg == "--quiet") {
      quiet = true;
    } else if (arg == "--timeout-ms" || arg == "--initial") {
      if (i + 1 == argc)
        return usage((arg + " needs a value").c_str());
      const std::string value = argv[++i];
      if (arg == "--initial") {
        opts.initial = value;
        continue;
      }
      long long ms = 0;
      const char* end = value.data() + value.size();
      const auto [ptr, ec] = std::from_chars(value.data(), end, ms);
      if (ec != std::errc{} || ptr != end || ms < 0)
        return usage("--timeout-ms needs a number of milliseconds");
      opts.timeout = std::chrono::milliseconds{ms};
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage(("unknown option " + arg).c_str());
    } else if (path != nullptr) {
      return usage("one history file only");
    } else {
      path = argv[i];
    }
  }
  if (path == nullptr)
    return usage("no history file");

  std::string error;
  std::optional<std::vector<lin::operation>> history;
  if (std::strcmp(path, "-") == 0) {
    history = lin::read_history(std::cin, error);
  } else {
    std::ifstream in(path);
    if (!in) {
      std::cerr << "cafraft-lincheck: cannot open " << path << ": " << std::strerror(errno) << "\n";
      return exit_other;
    }
    history = lin::read_history(in, error);
  }
  if (!history) {
    std::cerr << "cafraft-lincheck: " << path << ": " << error << "\n";
    return exit_other;
  }

  const auto begin = std::chrono::steady_clock::now();
  const lin::check_result result = lin::check(*history, opts);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - begin)
                      .count();
  std::cout << lin::to_string(result.answer) << ": " << result.operations << " operations, "
            << result.keys << " keys, " << result.states << " search states, " << ms << " ms\n";
  if (result.answer != lin::verdict::linearizable && !quiet)
    std::cout << result.explanation;
  switch (result.answer) {
  case lin::verdict::linearizable:
    return exit_linearizable;
  case lin::verdict::not_linearizable:
    return exit_not_linearizable;
  case lin::verdict::timed_out:
    return exit_other;
  }
  return exit_other;
}
