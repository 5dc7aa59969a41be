#include <cafraft/runtime/canary.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace cafraft::canary {

namespace {

size_t read_env() {
  auto v = std::getenv("CAFRAFT_CANARY");
  if (v == nullptr || *v == '\0')
    return none;
  std::string_view name{v};
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) {
#ifdef CAFRAFT_CANARIES
      std::fprintf(stderr, "cafraft: canary %s is planted (CAFRAFT_CANARY)\n", v);
#else
      std::fprintf(stderr, "cafraft: CAFRAFT_CANARY=%s ignored: built without CAFRAFT_CANARIES\n",
                   v);
#endif
      return i;
    }
  std::fprintf(stderr,
               "cafraft: CAFRAFT_CANARY=%s names no canary (runtime/canary.hpp lists them)\n", v);
  std::abort();
}

} // namespace

size_t chosen() {
  static const size_t which = read_env();
  return which;
}

#ifdef CAFRAFT_CANARIES
namespace {
// Checked at start, not at the first planted branch a test reaches: an unknown name fails every
// run, even one whose tests never pass a canary's site.
[[maybe_unused]] const size_t checked_at_start = chosen();
} // namespace
#endif

} // namespace cafraft::canary
