// The bugs that the fuzz tier found (tests/fuzz, docs/testing.md, "Fuzzing"), each as a plain test
// with real checksums: the fuzz build compiles them out, and its inputs in
// tests/fuzz/regressions/ replay only there.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "crash_disk.hpp"
#include <cafraft/messages/storage.pb.h>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/wal.hpp>

// cafraft-node's option parsing is compiled into cafraft-node only; the regression of
// --threads needs it here. (When a library of the programs' code links into cafraft-tests,
// link it and drop this include.)
#include "apps/node_options.cpp"

namespace cafraft::test {
namespace {

pb::LogEntry entry(uint64_t index, uint64_t term) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data("x" + std::to_string(index));
  return e;
}

durable_options options(std::shared_ptr<disk> fs, bool discard = false) {
  durable_options o;
  o.dir = "/data/n1";
  o.node_id = "n1";
  o.cluster_id = "c1";
  o.read_chunk_bytes = 64;
  o.discard_corrupt_log = discard;
  o.fs = std::move(fs);
  o.logger_name = "fuzz-regressions";
  return o;
}

void append(durable_storage& st, uint64_t from, uint64_t to, uint64_t term) {
  persist_batch b;
  for (auto i = from; i <= to; ++i)
    b.entries.push_back(entry(i, term));
  std::vector<persist_batch> batches;
  batches.push_back(std::move(b));
  st.write(std::move(batches));
}

// A data directory with entries 1 to 3 in segment 1.
std::shared_ptr<crash_disk> directory() {
  auto fs = std::make_shared<crash_disk>();
  durable_storage st{options(fs)};
  st.load();
  append(st, 1, 3, 1);
  return fs;
}

// fuzz tier, target data_dir (regressions/data_dir/segment-name-not-hex): a file named like a
// segment or a snapshot but without 16 lowercase hex digits made load() throw
// std::invalid_argument from std::stoull, not storage_error; "wal-0000000000000z00.log" was
// taken for segment 0, "wal--000000000000001.log" for segment 2^64 - 1. Such files are not
// ours: load() passes them by.
TEST(FuzzRegressions, NamesThatAreNotHexAreNotSegmentsOrSnapshots) {
  auto fs = directory();
  for (auto name :
       {"wal-zzzzzzzzzzzzzzzz.log", "wal-0000000000000z00.log", "wal--000000000000001.log",
        "wal-0x00000000000002.log", "wal- 000000000000002.log", "wal-000000000000000A.log",
        "snap-zzzzzzzzzzzzzzzz.snap", "snap--000000000000001.snap"})
    fs->poke(std::string{"/data/n1/"} + name, "not ours");
  durable_storage st{options(fs)};
  recovered_state r;
  try {
    r = st.load();
  } catch (const storage_error& e) {
    FAIL() << "refused: " << e.what();
  } catch (const std::exception& e) {
    FAIL() << "load() threw something other than storage_error: " << e.what();
  }
  ASSERT_EQ(r.log.size(), 3u);
  EXPECT_EQ(r.log.back().index(), 3u);
  EXPECT_FALSE(r.snapshot.has_value());
}

// fuzz tier, targets wal_segments and data_dir (regressions/*/torn-header-of-the-only-segment):
// the only segment with its header record cut short loaded as an empty log, cut to nothing;
// the next start refused it ("a segment without its header"), after the node had written to
// it. The header was synced when the segment was begun: that is damage, refused at once.
TEST(FuzzRegressions, TornHeaderOfTheOnlySegmentIsDamage) {
  auto fs = std::make_shared<crash_disk>();
  {
    durable_storage st{options(fs)};
    st.load();
  }
  auto seg = std::string{"/data/n1/wal-0000000000000001.log"};
  auto bytes = fs->read(seg);
  ASSERT_GT(bytes.size(), wal::header_size + 2);
  fs->poke(seg, bytes.substr(0, wal::header_size + 2)); // the header record cut short
  {
    durable_storage st{options(fs)};
    EXPECT_THROW(st.load(), storage_error);
  }
  // Set aside with discard_corrupt_log: the node starts, writes, and starts again.
  {
    durable_storage st{options(fs, true)};
    auto r = st.load();
    EXPECT_TRUE(r.log.empty());
    EXPECT_TRUE(r.hard_state.resyncing());
    append(st, 1, 2, 4);
  }
  durable_storage st{options(fs, true)};
  recovered_state r;
  ASSERT_NO_THROW(r = st.load());
  ASSERT_EQ(r.log.size(), 2u);
  EXPECT_EQ(r.log.back().term(), 4u);
}

// fuzz tier, target wire (regressions/wire/snapshot-through-index-2-64-minus-1): one
// InstallSnapshot through index 2^64 - 1, whole and with the right checksum, was received and
// installed; the log after it began at index 0 (wrapped around), and the next start refused
// the data directory. receive_chunk() never reports such a snapshot complete.
TEST(FuzzRegressions, SnapshotThroughAnIndexNoLogReachesIsNeverComplete) {
  auto fs = directory();
  std::string data = "abc";
  pb::InstallSnapshot chunk;
  chunk.set_term(3);
  chunk.set_leader_id("n2");
  chunk.mutable_meta()->set_index(~uint64_t{0});
  chunk.mutable_meta()->set_term(3);
  chunk.mutable_meta()->set_size(data.size());
  chunk.mutable_meta()->set_crc32c(crc32c(data));
  chunk.set_data(data);
  chunk.set_done(true);
  {
    durable_storage st{options(fs)};
    st.load();
    bool complete = true;
    EXPECT_EQ(st.receive_chunk(chunk, complete), 0u);
    EXPECT_FALSE(complete);
    // The same snapshot through an index a log does reach is received.
    chunk.mutable_meta()->set_index(5);
    EXPECT_EQ(st.receive_chunk(chunk, complete), data.size());
    EXPECT_TRUE(complete);
  }
  durable_storage st{options(fs)};
  EXPECT_EQ(st.load().log.size(), 3u);
}

// fuzz tier, target node_options (regressions/node_options/threads-*): --threads -1 was taken
// as 2^64 - 1 (CLI11 wraps a negative number into size_t), and any number was accepted, so
// that the node died in CAF's scheduler instead of saying what is wrong.
TEST(FuzzRegressions, ThreadsOutOfRangeIsAnError) {
  node_checks none;
  none.has_data = [](const std::string&, std::error_code&) { return false; };
  none.check_listen = [](const std::string&) { return std::string{}; };
  none.check_tls = [](const std::string&, const std::string&, const std::string&) {
    return std::string{};
  };
  auto validate_args = [&](std::vector<const char*> extra) {
    std::vector<const char*> argv{
        "cafraft-node", "--id",           "n1",         "--data-dir",        "/d",
        "--listen",     "127.0.0.1:7001", "--insecure", "--initial-cluster", "n1=127.0.0.1:7001"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    node_flags f;
    auto parsed = parse_node_flags(static_cast<int>(argv.size()), argv.data(), f);
    if (parsed.exit)
      return "exit: " + parsed.err;
    std::vector<member> members;
    std::vector<std::string> join;
    return validate_node_flags(f, members, join, none);
  };
  EXPECT_EQ(validate_args({"--threads", "4"}), "");
  EXPECT_EQ(validate_args({"--threads", "0"}), "");
  EXPECT_NE(validate_args({"--threads", "-1"}).find("--threads must be from 0"), std::string::npos);
  EXPECT_NE(validate_args({"--threads", "100000"}).find("--threads must be from 0"),
            std::string::npos);
}

// fuzz tier, target wire (regressions/wire/leader-success-below-its-snapshot): a success
// answer whose match index lies before the leader's snapshot (a follower that misbehaves, or
// an AppendEntries forged in the leader's name) left the leader sending from that index, and
// make_append() read before the start of its log (out of bounds). The leader must send from
// after its snapshot, or send the snapshot (replication::to_send).
TEST(FuzzRegressions, LeaderSendsNothingFromBeforeItsSnapshot) {
  raft_state s;
  s.id = "n2";
  s.term = 3;
  s.snapshot_index = 4;
  s.snapshot_term = 1;
  s.base_config.members = {
      {"n1", "h1:1", false, 0}, {"n2", "h2:2", false, 0}, {"n3", "h3:3", false, 0}};
  s.config = s.base_config;
  for (uint64_t i = 5; i <= 10; ++i)
    s.log.push_back(entry(i, i < 7 ? 2 : 3));
  s.commit_index = s.apply_sent = 7;
  replication repl{s, replication_limits{3, 256, 2}};
  repl.on_local_persisted(10);
  pb::AppendEntriesResponse resp;
  resp.set_term(3);
  resp.set_follower_id("n1");
  resp.set_success(true);
  resp.set_match_index(2);
  repl.on_response(resp);
  auto& p = repl.progress().at("n1");
  // Checked before to_send(), which would read out of bounds otherwise.
  ASSERT_TRUE(p.probing || p.next <= s.snapshot_index || p.sent >= s.snapshot_index)
      << "next " << p.next << ", sent " << p.sent << ", snapshot " << s.snapshot_index;
  for (auto& ae : repl.to_send("n1", replication::send_mode::heartbeat))
    EXPECT_GE(ae.prev_log_index(), s.snapshot_index);
  for (auto& ae : repl.to_send("n1", replication::send_mode::tick))
    EXPECT_GE(ae.prev_log_index(), s.snapshot_index);
}

} // namespace
} // namespace cafraft::test
