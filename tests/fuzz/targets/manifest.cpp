// The manifest (MANIFEST: one framed Manifest naming format, cluster and node) of an otherwise
// sound data directory, opened by durable_storage::load() on the in-memory disk. It succeeds
// or throws storage_error (another node's or cluster's directory, a damaged manifest); a
// directory that loaded loads again the same and takes a write.
//
// Input: u8 load options, then the file.
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  auto fs = fz::new_disk();
  fz::put(*fs, "HARDSTATE", fz::hard_state_file(1, "n1"));
  fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {{fz::entry(1, 1)}}));
  fz::put(*fs, "MANIFEST", std::string{in.rest()});
  fz::load_and_check(fs, lo);
  return 0;
}
