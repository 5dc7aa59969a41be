// The command parser of cafraft-console (apps/console_parse.hpp). A line either parses or is
// refused with an error; what parses holds no empty command, and quoting every word again (in
// double quotes, with backslash escapes) gives a line that parses to the same commands.
//
// Input: the line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "apps/console_parse.hpp"

namespace {

std::string quoted(const std::string& word) {
  std::string out = "\"";
  for (char c : word) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

void fail(const char* what) {
  std::fprintf(stderr, "console_parse: %s\n", what);
  std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string line(reinterpret_cast<const char*>(data), size);
  auto p = cafraft::console::parse(line);
  if (!p.error.empty()) {
    if (!p.commands.empty())
      fail("an error, but commands too");
    return 0;
  }
  std::string again;
  for (auto& cmd : p.commands) {
    if (cmd.empty())
      fail("an empty command");
    for (auto& word : cmd)
      again += quoted(word) + " ";
    again += ";";
  }
  auto q = cafraft::console::parse(again);
  if (!q.error.empty() || q.commands != p.commands)
    fail("the commands quoted again parse to others");
  return 0;
}
