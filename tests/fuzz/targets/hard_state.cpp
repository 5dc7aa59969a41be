// The hard state file (HARDSTATE: two slots of 4096 bytes, each a framed HardStateSlot) of an
// otherwise sound data directory, opened by durable_storage::load() on the in-memory disk. It
// succeeds or throws storage_error; a directory that loaded loads again the same and takes a
// write (fuzz_common.hpp, load_and_check).
//
// Input: u8 load options, then the file.
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  auto fs = fz::new_disk();
  fz::put(*fs, "MANIFEST", fz::manifest_file());
  fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {{fz::entry(1, 1), fz::entry(2, 1)}}));
  fz::put(*fs, "HARDSTATE", std::string{in.rest()});
  fz::load_and_check(fs, lo);
  return 0;
}
