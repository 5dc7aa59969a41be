// A whole data directory made of fuzz bytes (any of its files, any names), opened by
// durable_storage::load() on the in-memory disk. It succeeds or throws storage_error; a
// directory that loaded loads again the same and takes a write.
//
// Input: u8 load options, then up to 8 files, each a u8 kind and a blob of content:
//   kind % 8: 0 MANIFEST, 1 HARDSTATE, 2 wal-<u8>.log, 3 snap-<u8>.snap, 4 MANIFEST.tmp,
//             5 snap-incoming.tmp, 6 another name (a blob: its name, '/' and NUL dropped),
//             7 a name of the pattern wal-XXXXXXXXXXXXXXXX.log or snap-XXXXXXXXXXXXXXXX.snap
//               with 16 bytes of the input in place of the hex digits
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

namespace {

std::string clean_name(std::string_view raw) {
  std::string out;
  for (char c : raw)
    if (c != '/' && c != '\0')
      out += c;
  if (out.empty() || out == "." || out == ".." || out == "LOCK")
    out = "other";
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  auto fs = fz::new_disk();
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    auto kind = in.u8();
    std::string name;
    switch (kind % 8) {
      case 0:
        name = "MANIFEST";
        break;
      case 1:
        name = "HARDSTATE";
        break;
      case 2:
        name = fz::segment_name(in.u8());
        break;
      case 3:
        name = fz::snapshot_name(in.u8());
        break;
      case 4:
        name = "MANIFEST.tmp";
        break;
      case 5:
        name = "snap-incoming.tmp";
        break;
      case 6:
        name = clean_name(in.blob());
        break;
      default:
        name = clean_name(((kind & 8) != 0 ? "wal-" : "snap-") + std::string{in.bytes(16)} +
                          ((kind & 8) != 0 ? ".log" : ".snap"));
        break;
    }
    fz::put(*fs, name, std::string{in.blob()});
  }
  fz::load_and_check(fs, lo);
  return 0;
}
