// Snapshot transfers as a follower's storage receives them (log_storage::receive_chunk on
// durable_storage, the in-memory disk): a sequence of InstallSnapshot chunks, parsed as they
// arrive, with installs of what is reported complete (persist_batch::snapshot) and appends
// between them. receive_chunk never reports an offset past the snapshot's size; a complete
// snapshot installs, reads back whole, and is what the directory loads after a restart, which
// then loads again the same and takes a write.
//
// Input: u8 load options, then steps, each a u8 action and, for a chunk, a blob:
//   action % 4: 0, 1 a chunk (the blob is an InstallSnapshot); 2 an append of the next entry;
//               3 a restart (load again: the log and snapshot must be what was written)
//   action bit 3: the install of a chunk that completes a snapshot resets the log even when
//                 the log holds the snapshot's last entry (as rules::install_snapshot decides
//                 when the terms differ)
#include <map>

#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto lo = fz::read_load_options(in);
  auto fs = fz::new_disk();
  fz::put(*fs, "MANIFEST", fz::manifest_file());
  fz::put(*fs, "HARDSTATE", fz::hard_state_file(2, "n1"));
  std::vector<pb::LogEntry> es;
  for (uint64_t i = 1; i <= 5; ++i)
    es.push_back(fz::entry(i, i < 3 ? 1 : 2));
  fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {es}));
  auto store = std::make_unique<durable_storage>(fz::storage_options(fs, lo));
  uint64_t last = 0;
  uint64_t snapshot = 0; // index of the installed snapshot
  std::string snapshot_data;
  std::map<uint64_t, uint64_t> terms; // of the entries in the log (and the snapshot's last)
  bool opened = false;
  auto open = [&] {
    store.reset();
    store = std::make_unique<durable_storage>(fz::storage_options(fs, lo));
    auto r = store->load();
    fz::check_recovered(r, *store);
    FUZZ_CHECK((r.snapshot ? r.snapshot->index() : 0) == snapshot,
               "the snapshot installed at %llu is not the one loaded",
               static_cast<unsigned long long>(snapshot));
    FUZZ_CHECK(read_snapshot_data(*store) == snapshot_data,
               "the snapshot's data loads as other data");
    FUZZ_CHECK(!opened || snapshot + r.log.size() == last,
               "entries through %llu were written, a restart finds them through %llu",
               static_cast<unsigned long long>(last),
               static_cast<unsigned long long>(snapshot + r.log.size()));
    opened = true;
    last = snapshot + r.log.size();
    terms.clear();
    if (r.snapshot)
      terms[snapshot] = r.snapshot->term();
    for (auto& e : r.log)
      terms[e.index()] = e.term();
  };
  try {
    open();
  } catch (const storage_error& e) {
    FUZZ_CHECK(false, "the sound directory does not load: %s", e.what());
  }
  for (int steps = 0; !in.empty() && steps < 64; ++steps) {
    auto action = in.u8();
    try {
      switch (action % 4) {
      case 0:
      case 1: {
        auto bytes = in.blob();
        pb::InstallSnapshot chunk;
        if (!chunk.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
          break; // the wire refuses it (messages/pb_inspect.hpp)
        bool complete = false;
        auto next = store->receive_chunk(chunk, complete);
        auto& meta = chunk.meta();
        FUZZ_CHECK(next <= meta.size() || (next == 0 && !complete),
                   "next offset %llu past the size %llu", static_cast<unsigned long long>(next),
                   static_cast<unsigned long long>(meta.size()));
        if (!complete || meta.index() <= snapshot)
          break; // rules: only a snapshot past the commit index (and so past ours) installs
        // rules::install_snapshot: the log stays when it holds the snapshot's last entry.
        bool reset = (action & 8) != 0 || meta.index() > last || terms[meta.index()] != meta.term();
        persist_batch b;
        b.snapshot = meta;
        b.reset_log = reset;
        std::vector<persist_batch> batches;
        batches.push_back(std::move(b));
        store->write(std::move(batches));
        pb::SnapshotMeta stored;
        std::string got;
        FUZZ_CHECK(store->read_snapshot(0, static_cast<size_t>(meta.size()), stored, got),
                   "no snapshot after an install");
        FUZZ_CHECK(stored.SerializeAsString() == meta.SerializeAsString() &&
                       got.size() == meta.size(),
                   "the snapshot reads back as another");
        snapshot = meta.index();
        snapshot_data = got;
        if (reset) {
          last = snapshot;
          terms.clear();
        }
        for (auto i = terms.begin(); i != terms.end() && i->first < snapshot;)
          i = terms.erase(i);
        terms[snapshot] = meta.term();
        break;
      }
      case 2: {
        persist_batch b;
        b.entries.push_back(fz::entry(last + 1, 3));
        std::vector<persist_batch> batches;
        batches.push_back(std::move(b));
        store->write(std::move(batches));
        last += 1;
        terms[last] = 3;
        break;
      }
      default:
        open();
        break;
      }
    } catch (const storage_error& e) {
      FUZZ_CHECK(false, "the storage failed: %s", e.what());
    }
  }
  store.reset();
  fz::load_and_check(fs, lo);
  return 0;
}
