// The snapshot file (snap-<index>.snap: a framed SnapshotHeader, then the state machine's
// data) of an otherwise sound data directory, opened by durable_storage::load() on the
// in-memory disk. The WAL holds entries 1 to 6; the snapshot's name says its index. It succeeds
// or throws storage_error; a directory that loaded loads again the same and takes a write.
//
// Input: u8 load options, u8 the index in the file's name, u8 which WAL (0: entries 1 to 6, 1:
// a WAL that restarts after the snapshot, 2: entries 1 to 6 and 7 to 9 in a second segment),
// then the file.
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  uint64_t index = in.u8();
  auto wal = in.u8() % 3;
  auto fs = fz::new_disk();
  fz::put(*fs, "MANIFEST", fz::manifest_file());
  fz::put(*fs, "HARDSTATE", fz::hard_state_file(2, "n1"));
  std::vector<pb::LogEntry> es;
  for (uint64_t i = 1; i <= 6; ++i)
    es.push_back(fz::entry(i, i < 4 ? 1 : 2));
  if (wal == 1) {
    fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {es}));
    fz::put(*fs, fz::segment_name(2), fz::segment_file(2, index + 1, {}, true));
  } else {
    fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {es}));
    if (wal == 2)
      fz::put(*fs, fz::segment_name(2),
              fz::segment_file(2, 7, {{fz::entry(7, 2), fz::entry(8, 3)}, {fz::entry(9, 3)}}));
  }
  fz::put(*fs, fz::snapshot_name(index), std::string{in.rest()});
  fz::load_and_check(fs, lo);
  return 0;
}
