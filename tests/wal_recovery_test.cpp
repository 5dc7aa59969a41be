// WAL recovery never shortens a log silently: damage to a record that was synced whole, with
// acknowledged records after it, is refused (or, on request, the whole log is set aside and the
// node resyncs without voting), never cut as if a crash had torn the tail.
#include <cstdlib>

#include <gtest/gtest.h>

#include "crash_disk.hpp"
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft::test {
namespace {

const char* const logger = "wal-recovery-test";

durable_options options(std::shared_ptr<disk> fs, bool discard = false) {
  durable_options o;
  o.dir = "/data/n1";
  o.node_id = "n1";
  o.cluster_id = "c1";
  o.preallocate_bytes = 1024;
  o.read_chunk_bytes = 64;
  o.discard_corrupt_log = discard;
  o.fs = std::move(fs);
  o.logger_name = logger; // quiet unless CAFRAFT_TEST_LOG is set
  return o;
}

// One acknowledged write per element: a batch of three entries each.
std::shared_ptr<crash_disk> disk_with_writes(size_t writes) {
  auto lvl = std::getenv("CAFRAFT_TEST_LOG");
  get_logger(logger)->set_level(lvl ? spdlog::level::from_str(lvl) : spdlog::level::off);
  auto fs = std::make_shared<crash_disk>();
  durable_storage s{options(fs)};
  s.load();
  uint64_t index = 0;
  for (size_t w = 0; w < writes; ++w) {
    persist_batch b;
    if (w == 0) {
      b.hard_state.emplace();
      b.hard_state->set_term(1);
    }
    for (int k = 0; k < 3; ++k) {
      pb::LogEntry e;
      e.set_index(++index);
      e.set_term(1);
      e.set_type(pb::ENTRY_COMMAND);
      e.set_data("value-" + std::to_string(index));
      b.entries.push_back(e);
    }
    std::vector<persist_batch> group;
    group.push_back(std::move(b));
    s.write(std::move(group));
  }
  return fs;
}

// The only segment, with a bit flipped in the payload of its `record`-th record (0: the
// segment's header record).
std::shared_ptr<crash_disk> damaged(const crash_disk& fs, size_t record, std::string& segment,
                                    uint64_t& offset) {
  auto img = fs.crashed(0);
  std::string name;
  for (auto& n : img->list("/data/n1"))
    if (n.rfind("wal-", 0) == 0)
      name = n;
  segment = "/data/n1/" + name;
  auto bytes = img->read(segment);
  auto scanned = wal::scan(bytes, wal::zeros::reserved);
  EXPECT_GT(scanned.payloads.size(), record + 2) << "records after the damaged one";
  auto& payload = scanned.payloads.at(record);
  offset = static_cast<uint64_t>(payload.data() - bytes.data()) - wal::header_size;
  auto at = static_cast<size_t>(payload.data() - bytes.data()) + payload.size() / 2;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
  img->poke(segment, bytes);
  return img;
}

TEST(WalRecovery, DamageToASyncedRecordBeforeOthersIsRefusedNotCut) {
  auto fs = disk_with_writes(8);
  std::string segment;
  uint64_t offset = 0;
  auto img = damaged(*fs, 2, segment, offset); // the second write of eight
  durable_storage s{options(img)};
  try {
    auto rec = s.load();
    FAIL() << "started with " << rec.log.size() << " of 24 acknowledged entries after damage "
           << "in a record that was synced whole";
  } catch (const storage_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(segment + " at offset " + std::to_string(offset)), std::string::npos)
        << what;
  }
}

TEST(WalRecovery, ADiscardedLogIsSetAsideAndTheNodeResyncsInsteadOfVoting) {
  auto fs = disk_with_writes(8);
  std::string segment;
  uint64_t offset = 0;
  auto img = damaged(*fs, 3, segment, offset);
  durable_storage s{options(img, true)};
  auto rec = s.load();
  EXPECT_TRUE(rec.log.empty()) << "a damaged log was cut to " << rec.log.size()
                               << " entries instead of set aside";
  EXPECT_TRUE(rec.hard_state.resyncing()) << "the node would vote with a log it lost part of";
  EXPECT_EQ(rec.hard_state.term(), 1u);
  EXPECT_TRUE(img->exists(segment + ".discarded")) << "the damaged log is kept for inspection";
}

} // namespace
} // namespace cafraft::test
