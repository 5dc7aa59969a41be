// WAL segments (wal-<seq>.log: a header record naming the segment and its first index, then
// records of entries and cuts) of a data directory with a sound manifest and hard state, and
// optionally a snapshot, opened by durable_storage::load() on the in-memory disk: segments read
// whole or in chunks, in reserved space or not, with damage stopping the load or discarded. It
// succeeds or throws storage_error; a directory that loaded loads again the same and takes a
// write.
//
// Input: u8 load options, u8 snapshot (0: none, else a snapshot at that index % 16 with term
// 1 or 2), then up to 4 segments, each a u8 sequence number and a blob.
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  auto snap = in.u8();
  auto fs = fz::new_disk();
  fz::put(*fs, "MANIFEST", fz::manifest_file());
  fz::put(*fs, "HARDSTATE", fz::hard_state_file(3, "n2"));
  if (snap % 16 != 0) {
    pb::SnapshotMeta meta;
    meta.set_index(snap % 16);
    meta.set_term(snap < 128 ? 1 : 2);
    std::string bytes = "snapshot";
    meta.set_size(bytes.size());
    meta.set_crc32c(crc32c(bytes));
    fz::put(*fs, fz::snapshot_name(meta.index()), fz::snapshot_file(meta, bytes));
  }
  for (int i = 0; i < 4 && !in.empty(); ++i) {
    uint64_t seq = in.u8();
    fz::put(*fs, fz::segment_name(seq), std::string{in.blob()});
  }
  fz::load_and_check(fs, lo);
  return 0;
}
