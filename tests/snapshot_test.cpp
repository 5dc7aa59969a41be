// Snapshots and compaction: the log after a snapshot (rules), sending a snapshot in chunks
// (replication), and keeping it on disk: saving, compaction of the WAL, receiving chunks,
// installing atomically, and recovery after every crash state of those operations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "crash_disk.hpp"
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft::test {
namespace {

pb::LogEntry entry(uint64_t index, uint64_t term, const std::string& data = "x") {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data(data);
  return e;
}

pb::SnapshotMeta meta_for(uint64_t index, uint64_t term, const std::string& data) {
  pb::SnapshotMeta m;
  m.set_index(index);
  m.set_term(term);
  m.set_size(data.size());
  m.set_crc32c(crc32c(data));
  return m;
}

// A state whose log holds entries 1..n, entry i in term terms[i-1].
raft_state state_with(const std::vector<uint64_t>& terms) {
  raft_state s;
  s.id = "n2";
  s.term = terms.empty() ? 1 : terms.back();
  for (size_t i = 0; i < terms.size(); ++i)
    s.log.push_back(entry(i + 1, terms[i]));
  s.config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
  s.base_config = s.config;
  return s;
}

// -- the log after a snapshot ---------------------------------------------------------------

TEST(SnapshotRules, CompactionKeepsIndexesAndTheTermOfTheSnapshotsLastEntry) {
  auto s = state_with({1, 1, 2, 2, 3});
  s.commit_index = s.apply_sent = 4;
  rules::compact(s, meta_for(3, 2, ""));
  EXPECT_EQ(s.snapshot_index, 3u);
  EXPECT_EQ(s.log.size(), 2u);
  EXPECT_EQ(s.last_index(), 5u);
  EXPECT_EQ(s.last_term(), 3u);
  EXPECT_EQ(s.term_at(3), 2u) << "the snapshot's last entry still has a known term";
  EXPECT_EQ(s.term_at(2), 0u) << "entries inside the snapshot are gone";
  EXPECT_EQ(s.entry(4).index(), 4u);
  // An older snapshot, or one that does not match the log, changes nothing.
  rules::compact(s, meta_for(2, 1, ""));
  rules::compact(s, meta_for(4, 9, ""));
  EXPECT_EQ(s.snapshot_index, 3u);
  // Everything compacted: the log is empty, its last entry is the snapshot's.
  rules::compact(s, meta_for(5, 3, ""));
  EXPECT_TRUE(s.log.empty());
  EXPECT_EQ(s.last_index(), 5u);
  EXPECT_EQ(s.last_term(), 3u);
}

TEST(SnapshotRules, AppendEntriesBeforeTheSnapshotSkipCommittedEntries) {
  auto s = state_with({1, 1, 2, 2});
  s.commit_index = s.apply_sent = 4;
  rules::compact(s, meta_for(4, 2, ""));
  // A leader that still thinks we need entries 3..6: 3 and 4 are in the snapshot (committed,
  // so they match), 5 and 6 are new.
  pb::AppendEntries req;
  req.set_term(2);
  req.set_leader_id("n1");
  req.set_prev_log_index(2);
  req.set_prev_log_term(1);
  for (uint64_t i = 3; i <= 6; ++i)
    *req.add_entries() = entry(i, 2);
  req.set_leader_commit(6);
  auto fx = rules::accept_append(s, req);
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.response.match_index(), 6u);
  ASSERT_EQ(fx.appended.size(), 2u);
  EXPECT_EQ(fx.appended.front().index(), 5u);
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_EQ(s.last_index(), 6u);
  EXPECT_EQ(s.commit_index, 6u);
  // A conflict after the snapshot is cut as usual; backtracking stops at the snapshot.
  pb::AppendEntries other;
  other.set_term(3);
  other.set_leader_id("n3");
  other.set_prev_log_index(6);
  other.set_prev_log_term(3);
  rules::observe_term(s, 3);
  auto rej = rules::accept_append(s, other);
  EXPECT_FALSE(rej.response.success());
  EXPECT_EQ(rej.response.reject_hint(), 5u) << "the first entry of the conflicting term";
}

TEST(SnapshotRules, InstallKeepsTheEntriesAfterAMatchingLastEntry) {
  auto s = state_with({1, 1, 2, 2, 2});
  s.commit_index = s.apply_sent = 2;
  bool reset = rules::install_snapshot(s, meta_for(4, 2, ""));
  EXPECT_FALSE(reset);
  EXPECT_EQ(s.snapshot_index, 4u);
  EXPECT_EQ(s.last_index(), 5u);
  EXPECT_EQ(s.commit_index, 4u);
  EXPECT_EQ(s.apply_sent, 4u) << "the state machine gets the snapshot, not entries 3 and 4";
}

TEST(SnapshotRules, InstallDropsALogThatConflictsOrEndsBefore) {
  auto conflicting = state_with({1, 1, 2, 2, 2});
  EXPECT_TRUE(rules::install_snapshot(conflicting, meta_for(4, 3, "")));
  EXPECT_TRUE(conflicting.log.empty());
  EXPECT_EQ(conflicting.last_index(), 4u);
  EXPECT_EQ(conflicting.last_term(), 3u);
  auto short_log = state_with({1});
  EXPECT_TRUE(rules::install_snapshot(short_log, meta_for(10, 2, "")));
  EXPECT_EQ(short_log.last_index(), 10u);
  EXPECT_EQ(short_log.commit_index, 10u);
}

TEST(SnapshotRules, InstallPastTheResyncTargetEndsAResync) {
  auto s = state_with({});
  s.resyncing = true;
  s.resync_target = 8;
  rules::install_snapshot(s, meta_for(5, 2, ""));
  EXPECT_TRUE(s.resyncing) << "5 is short of the leader's last index at first contact";
  rules::install_snapshot(s, meta_for(9, 2, ""));
  EXPECT_FALSE(s.resyncing);
}

// -- sending a snapshot ---------------------------------------------------------------------

struct leader_fixture {
  raft_state s = state_with({1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  std::unique_ptr<replication> repl;

  leader_fixture() {
    s.id = "n1";
    s.commit_index = s.apply_sent = 10;
    rules::compact(s, meta_for(8, 1, ""));
    repl = std::make_unique<replication>(s, replication_limits{});
  }

  pb::AppendEntriesResponse reject(const std::string& peer, uint64_t prev, uint64_t hint) {
    pb::AppendEntriesResponse r;
    r.set_term(s.term);
    r.set_follower_id(peer);
    r.set_rejected_index(prev);
    r.set_reject_hint(hint);
    return r;
  }

  pb::InstallSnapshotResponse answer(const std::string& peer, uint64_t index, uint64_t next,
                                     bool installed) {
    pb::InstallSnapshotResponse r;
    r.set_term(s.term);
    r.set_follower_id(peer);
    r.set_snapshot_index(index);
    r.set_next_offset(next);
    r.set_installed(installed);
    return r;
  }
};

TEST(SnapshotReplication, AFollowerThatNeedsDroppedEntriesGetsChunksOneAtATime) {
  leader_fixture f;
  using mode = replication::send_mode;
  // n2 is empty: its next entry (1) is inside the snapshot.
  f.repl->on_response(f.reject("n2", 10, 1));
  EXPECT_TRUE(f.repl->to_send("n2", mode::heartbeat).empty()) << "no AppendEntries meanwhile";
  auto first = f.repl->snapshot_chunk_due("n2", mode::entries);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 0u);
  EXPECT_TRUE(f.repl->chunk_read("n2", 8, 0));
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::entries)) << "one chunk in flight";
  // The follower holds 100 bytes: the next chunk starts there.
  f.repl->on_snapshot_response(f.answer("n2", 8, 100, false));
  auto second = f.repl->snapshot_chunk_due("n2", mode::entries);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 100u);
  // Answers to duplicates and late answers send nothing more: one chunk stays in flight.
  f.repl->on_snapshot_response(f.answer("n2", 8, 100, false));
  f.repl->on_snapshot_response(f.answer("n2", 8, 40, false));
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::entries));
  // Lost: nothing comes back for more than a whole heartbeat interval, so the same chunk goes
  // again; the next resend waits twice as long.
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::tick)) << "sent just before this tick";
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::entries));
  auto again = f.repl->snapshot_chunk_due("n2", mode::tick);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 100u) << "resumed where the follower is, not from the start";
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::tick));
  EXPECT_FALSE(f.repl->snapshot_chunk_due("n2", mode::tick));
  EXPECT_TRUE(f.repl->snapshot_chunk_due("n2", mode::tick)) << "backed off to two intervals";
  // The follower lost the transfer (it restarted): start over from 0.
  f.repl->on_snapshot_response(f.answer("n2", 8, 0, false));
  auto over = f.repl->snapshot_chunk_due("n2", mode::entries);
  ASSERT_TRUE(over);
  EXPECT_EQ(*over, 0u);
  f.repl->on_snapshot_response(f.answer("n2", 8, 100, false));
  // A late answer about another snapshot changes nothing.
  f.repl->on_snapshot_response(f.answer("n2", 5, 0, true));
  EXPECT_EQ(f.repl->progress().at("n2").match, 0u);
  // Installed: replication goes on after the snapshot, and it counts for the commit.
  f.repl->on_snapshot_response(f.answer("n2", 8, 300, true));
  auto& p = f.repl->progress().at("n2");
  EXPECT_FALSE(p.snapshotting);
  EXPECT_EQ(p.match, 8u);
  auto aes = f.repl->to_send("n2", mode::heartbeat);
  ASSERT_EQ(aes.size(), 1u);
  EXPECT_EQ(aes[0].prev_log_index(), 8u);
  EXPECT_EQ(aes[0].prev_log_term(), 1u);
  EXPECT_EQ(aes[0].entries_size(), 2u);
}

TEST(SnapshotReplication, ANewerSnapshotRestartsTheTransfer) {
  leader_fixture f;
  using mode = replication::send_mode;
  f.repl->on_response(f.reject("n3", 10, 1));
  ASSERT_TRUE(f.repl->snapshot_chunk_due("n3", mode::entries));
  ASSERT_TRUE(f.repl->chunk_read("n3", 8, 0));
  f.repl->on_snapshot_response(f.answer("n3", 8, 64, false));
  ASSERT_EQ(*f.repl->snapshot_chunk_due("n3", mode::entries), 64u);
  // Storage has a newer snapshot by the time the chunk is read: start over with it.
  EXPECT_FALSE(f.repl->chunk_read("n3", 10, 64));
  auto restart = f.repl->snapshot_chunk_due("n3", mode::entries);
  ASSERT_TRUE(restart);
  EXPECT_EQ(*restart, 0u);
  EXPECT_TRUE(f.repl->chunk_read("n3", 10, 0));
}

// -- on disk --------------------------------------------------------------------------------

durable_options options(std::shared_ptr<disk> fs, bool discard = false,
                        uint64_t segment_bytes = 1024) {
  durable_options o;
  o.dir = "/data/n1";
  o.node_id = "n1";
  o.cluster_id = "c1";
  o.segment_bytes = segment_bytes; // many segments, so that compaction has something to drop
  o.discard_corrupt_log = discard;
  o.fs = std::move(fs);
  o.logger_name = "snapshot-test";
  return o;
}

const bool quiet = [] {
  auto lvl = std::getenv("CAFRAFT_TEST_LOG");
  get_logger("snapshot-test")->set_level(lvl ? spdlog::level::from_str(lvl) : spdlog::level::off);
  return true;
}();

size_t count_files(disk& fs, const std::string& prefix) {
  size_t n = 0;
  for (auto& name : fs.list("/data/n1"))
    n += name.rfind(prefix, 0) == 0;
  return n;
}

// Entries from..to, one write each, or all in one write.
void append(durable_storage& s, uint64_t from, uint64_t to, uint64_t term, bool one_write = false) {
  persist_batch b;
  for (uint64_t i = from; i <= to; ++i) {
    b.entries.push_back(entry(i, term, std::string(100, static_cast<char>('a' + i % 26))));
    if (!one_write || i == to) {
      s.write({std::move(b)});
      b = {};
    }
  }
}

// Sends `data` of snapshot `meta` to `s` in chunks of `chunk` bytes, as a leader would.
void receive_all(durable_storage& s, const pb::SnapshotMeta& meta, const std::string& data,
                 size_t chunk) {
  uint64_t offset = 0;
  bool complete = false;
  while (!complete) {
    pb::InstallSnapshot req;
    *req.mutable_meta() = meta;
    req.set_offset(offset);
    req.set_data(data.substr(offset, chunk));
    req.set_done(offset + chunk >= data.size());
    offset = s.receive_chunk(req, complete);
  }
}

TEST(SnapshotStorage, SavingASnapshotDropsTheSegmentsItCovers) {
  auto fs = std::make_shared<crash_disk>();
  std::string data(5000, 's');
  {
    durable_storage s{options(fs)};
    s.load();
    append(s, 1, 60, 1);
    auto before = count_files(*fs, "wal-");
    ASSERT_GT(before, 4u);
    s.save_snapshot(meta_for(50, 1, data), data);
    EXPECT_LT(count_files(*fs, "wal-"), before);
    EXPECT_EQ(count_files(*fs, "snap-"), 1u);
    pb::SnapshotMeta m;
    std::string chunk;
    ASSERT_TRUE(s.read_snapshot(4990, 100, m, chunk));
    EXPECT_EQ(m.index(), 50u);
    EXPECT_EQ(chunk, std::string(10, 's')) << "reads stop at the end of the data";
    append(s, 61, 70, 2);
    s.save_snapshot(meta_for(65, 2, "newer"), "newer");
    EXPECT_EQ(count_files(*fs, "snap-"), 1u) << "the older snapshot is removed";
  }
  durable_storage again{options(fs)};
  auto rec = again.load();
  ASSERT_TRUE(rec.snapshot);
  EXPECT_EQ(rec.snapshot->index(), 65u);
  EXPECT_EQ(read_snapshot_data(again), "newer");
  ASSERT_EQ(rec.log.size(), 5u);
  EXPECT_EQ(rec.log.front().index(), 66u);
  EXPECT_EQ(rec.log.back().term(), 2u);
}

// Snapshots taken often keep the WAL on disk near what came after them: a segment that holds
// an eighth of a segment of covered entries is closed at a snapshot and removed at the next,
// instead of growing to the full segment size first.
TEST(SnapshotStorage, FrequentSnapshotsKeepTheWalSmall) {
  auto fs = std::make_shared<crash_disk>();
  uint64_t segment_bytes = 64 << 10, most = 0;
  auto wal_bytes = [&] {
    uint64_t n = 0;
    for (auto& name : fs->list("/data/n1"))
      if (name.rfind("wal-", 0) == 0) { // records, not the zeros of space reserved after them
        auto data = fs->read("/data/n1/" + name);
        n += data.find_last_not_of('\0') + 1;
      }
    return n;
  };
  {
    durable_storage s{options(fs, false, segment_bytes)};
    s.load();
    for (uint64_t last = 100; last <= 3000; last += 100) { // 100 entries: about 12 KiB
      append(s, last - 99, last, 1, true);
      s.save_snapshot(meta_for(last - 20, 1, "state"), "state");
      most = std::max(most, wal_bytes());
    }
  }
  EXPECT_LT(most, segment_bytes / 2) << "3000 entries of 100 bytes, a snapshot every 100";
  durable_storage again{options(fs, false, segment_bytes)};
  auto rec = again.load();
  ASSERT_TRUE(rec.snapshot);
  EXPECT_EQ(rec.snapshot->index(), 2980u);
  ASSERT_EQ(rec.log.size(), 20u);
  EXPECT_EQ(rec.log.front().index(), 2981u);
}

TEST(SnapshotStorage, ChunksResumeAfterLossAndAreCheckedWhole) {
  auto fs = std::make_shared<crash_disk>();
  durable_storage s{options(fs)};
  s.load();
  std::string data;
  for (int i = 0; i < 1000; ++i)
    data += static_cast<char>(i * 7);
  auto meta = meta_for(40, 3, data);
  auto chunk = [&](uint64_t offset, size_t n, const pb::SnapshotMeta& m) {
    pb::InstallSnapshot req;
    *req.mutable_meta() = m;
    req.set_offset(offset);
    req.set_data(data.substr(offset, n));
    return req;
  };
  bool complete = false;
  EXPECT_EQ(s.receive_chunk(chunk(300, 300, meta), complete), 0u) << "no start: from 0";
  EXPECT_EQ(s.receive_chunk(chunk(0, 300, meta), complete), 300u);
  EXPECT_EQ(s.receive_chunk(chunk(600, 300, meta), complete), 300u) << "a lost chunk: resume";
  EXPECT_EQ(s.receive_chunk(chunk(0, 300, meta), complete), 300u) << "a duplicate: ignored";
  EXPECT_EQ(s.receive_chunk(chunk(300, 300, meta), complete), 600u);
  EXPECT_FALSE(complete);
  EXPECT_EQ(s.receive_chunk(chunk(600, 400, meta), complete), 1000u);
  EXPECT_TRUE(complete);
  EXPECT_EQ(s.receive_chunk(chunk(600, 400, meta), complete), 1000u) << "the last one again";
  EXPECT_TRUE(complete);
  // Damaged in transit: the checksum fails at the end, and the transfer starts over.
  auto other = meta_for(41, 3, data);
  other.set_crc32c(other.crc32c() ^ 1);
  EXPECT_EQ(s.receive_chunk(chunk(0, 600, other), complete), 600u);
  EXPECT_EQ(s.receive_chunk(chunk(600, 400, other), complete), 0u);
  EXPECT_FALSE(complete);
  EXPECT_THROW(
      {
        persist_batch b;
        b.snapshot = other;
        s.write({b});
      },
      storage_error)
      << "what was not received whole is never installed";
}

TEST(SnapshotStorage, InstallWithAResetStartsTheLogAfterTheSnapshot) {
  auto fs = std::make_shared<crash_disk>();
  std::string data(3000, 'd');
  auto meta = meta_for(100, 4, data);
  {
    durable_storage s{options(fs)};
    s.load();
    append(s, 1, 30, 1); // a log that ends long before the snapshot
    receive_all(s, meta, data, 700);
    persist_batch b;
    b.snapshot = meta;
    b.reset_log = true;
    b.entries.push_back(entry(101, 4)); // the entries after it, in the same write
    s.write({b});
    EXPECT_EQ(count_files(*fs, "wal-"), 1u) << "the old log is gone";
  }
  durable_storage again{options(fs)};
  auto rec = again.load();
  ASSERT_TRUE(rec.snapshot);
  EXPECT_EQ(rec.snapshot->index(), 100u);
  EXPECT_EQ(read_snapshot_data(again), data);
  ASSERT_EQ(rec.log.size(), 1u);
  EXPECT_EQ(rec.log[0].index(), 101u);
}

TEST(SnapshotStorage, InstallThatKeepsTheLogKeepsTheEntriesAfterIt) {
  auto fs = std::make_shared<crash_disk>();
  std::string data(10, 'k');
  auto meta = meta_for(20, 1, data);
  {
    durable_storage s{options(fs)};
    s.load();
    append(s, 1, 25, 1);
    receive_all(s, meta, data, 4);
    persist_batch b;
    b.snapshot = meta;
    s.write({b});
  }
  durable_storage again{options(fs)};
  auto rec = again.load();
  ASSERT_EQ(rec.log.size(), 5u);
  EXPECT_EQ(rec.log.front().index(), 21u);
}

// A follower whose log runs past the snapshot with entries of a deposed leader (another term
// at the snapshot's index): the install drops them, and what it acknowledges after the install
// survives restarts, also when the power failed at any point of the install.
TEST(SnapshotStorage, EntriesAcknowledgedAfterAResetInstallSurviveRestarts) {
  std::string data(900, 'r');
  auto meta = meta_for(15, 3, data);
  auto base = std::make_shared<crash_disk>();
  {
    durable_storage s{options(base)};
    s.load();
    append(s, 1, 10, 1);
    append(s, 11, 40, 2); // several segments, the deposed leader's entries from 11 on
    receive_all(s, meta, data, 200);
  }
  size_t checked = 0;
  for (size_t n = 0;; ++n) {
    auto trial = base->clone();
    bool finished = true;
    {
      durable_storage s{options(trial)};
      s.load();
      receive_all(s, meta, data, 200);
      trial->crash_at_op(n);
      try {
        persist_batch b;
        b.snapshot = meta;
        b.reset_log = true;
        s.write({b});
      } catch (const crash_disk::crashed_now&) {
        finished = false;
      }
    }
    for (size_t keep = 0; keep <= trial->pending(); ++keep) {
      auto image = trial->crashed(keep);
      {
        durable_storage s{options(image)};
        recovered_state rec;
        try {
          rec = s.load();
        } catch (const std::exception& ex) {
          std::string files;
          for (auto& f : trial->crashed(keep)->list("/data/n1"))
            files += f + " ";
          FAIL() << "crash at op " << n << ", keep " << keep << " of " << trial->pending() << ": "
                 << ex.what() << "; files: " << files;
        }
        // Before the install became durable: the old log; after: the snapshot and nothing of
        // the deposed leader.
        if (rec.snapshot) {
          EXPECT_TRUE(rec.log.empty()) << "crash at op " << n << ", keep " << keep;
          append(s, 16, 25, 3); // acknowledged after the (recovered) install
        } else {
          EXPECT_EQ(rec.log.size(), 40u);
          continue;
        }
      }
      // Restarted twice more, the acknowledged entries are all there.
      for (int restart = 0; restart < 2; ++restart) {
        durable_storage s{options(image)};
        recovered_state rec;
        try {
          rec = s.load();
        } catch (const std::exception& ex) {
          FAIL() << "crash at op " << n << ", keep " << keep << ", restart " << restart << ": "
                 << ex.what();
        }
        ASSERT_TRUE(rec.snapshot);
        ASSERT_EQ(rec.log.size(), 10u) << "crash at op " << n << ", keep " << keep;
        EXPECT_EQ(rec.log.front().index(), 16u);
        EXPECT_EQ(rec.log.back().term(), 3u);
      }
      ++checked;
    }
    if (finished)
      break;
  }
  EXPECT_GT(checked, 3u);
}

// The logical content: every index the node can serve, from the snapshot or the log.
struct content {
  uint64_t snapshot = 0;
  std::string snapshot_data;
  std::vector<std::string> log; // serialized entries after the snapshot
  bool operator==(const content& o) const {
    return snapshot == o.snapshot && snapshot_data == o.snapshot_data && log == o.log;
  }
};

content content_of(log_storage&& store) {
  auto rec = store.load();
  content c;
  if (rec.snapshot) {
    c.snapshot = rec.snapshot->index();
    c.snapshot_data = read_snapshot_data(store);
  }
  for (auto& e : rec.log)
    c.log.push_back(e.SerializeAsString());
  return c;
}

// Power fails at every disk operation of saving a snapshot, of installing one (with and
// without a reset of the log), and of appending after them; every crash state recovers to the
// state before or after the operation, never to anything else, and never refuses to start.
size_t explore_snapshot_crashes(uint64_t local_index, uint64_t segment_bytes) {
  size_t states = 0;
  auto options = [segment_bytes](std::shared_ptr<disk> fs) {
    return test::options(std::move(fs), false, segment_bytes);
  };
  std::string local(2500, 'L'), remote(2600, 'R'), streamed(2100, 'S');
  auto local_meta = meta_for(local_index, 1, local);
  auto remote_meta = meta_for(90, 3, remote);
  using step = std::function<void(durable_storage&)>;
  std::vector<std::pair<std::string, step>> steps = {
      {"save", [&](durable_storage& s) { s.save_snapshot(local_meta, local); }},
      {"append", [&](durable_storage& s) { append(s, 61, 64, 2, true); }},
      {"save in chunks",
       [&](durable_storage& s) {
         s.save_begin(meta_for(62, 2, ""));
         for (size_t at = 0; at < streamed.size(); at += 700)
           s.save_append(std::string_view{streamed}.substr(at, 700));
         s.save_finish();
       }},
      {"install with reset",
       [&](durable_storage& s) {
         persist_batch b;
         b.snapshot = remote_meta;
         b.reset_log = true;
         b.entries.push_back(entry(91, 3));
         s.write({b});
       }},
      {"append after", [&](durable_storage& s) { append(s, 92, 95, 3, true); }},
  };
  auto fs = std::make_shared<crash_disk>();
  auto s = std::make_unique<durable_storage>(options(fs));
  s->load();
  append(*s, 1, 60, 1);
  for (auto& [name, run] : steps) {
    bool install = name == "install with reset";
    // The states a crash may leave: before the operation, after it, and for the install the
    // snapshot with the log reset but the entry after it not yet written (never acknowledged).
    std::vector<content> allowed{content_of(durable_storage{options(fs->clone())})};
    {
      auto ref = fs->clone();
      durable_storage writer{options(ref)};
      writer.load();
      if (install)
        receive_all(writer, remote_meta, remote, 1000);
      run(writer);
      allowed.push_back(content_of(durable_storage{options(ref->clone())}));
    }
    if (install)
      allowed.push_back(content{remote_meta.index(), remote, {}});
    for (size_t n = 0;; ++n) {
      auto trial = fs->clone();
      durable_storage writer{options(trial)};
      writer.load();
      if (install)
        receive_all(writer, remote_meta, remote, 1000);
      trial->crash_at_op(n);
      bool finished = true;
      try {
        run(writer);
      } catch (const crash_disk::crashed_now&) {
        finished = false;
      }
      for (size_t keep = 0; keep <= trial->pending(); ++keep) {
        std::vector<size_t> tears{std::string::npos};
        if (keep > 0)
          for (size_t t : {size_t{0}, size_t{7}, trial->pending_bytes(keep - 1) / 2})
            if (t < trial->pending_bytes(keep - 1))
              tears.push_back(t);
        for (auto tear : tears) {
          content got;
          try {
            got = content_of(durable_storage{options(trial->crashed(keep, tear))});
          } catch (const std::exception& ex) {
            ADD_FAILURE() << name << ", crash at op " << n << ": recovery refused: " << ex.what();
            return states;
          }
          ++states;
          if (std::find(allowed.begin(), allowed.end(), got) == allowed.end()) {
            ADD_FAILURE() << name << " (snapshot at " << local_index << ", segments of "
                          << segment_bytes << " bytes), crash at op " << n << ", keep " << keep
                          << ": snapshot " << got.snapshot << " and " << got.log.size()
                          << " entries";
            return states;
          }
        }
      }
      if (finished)
        break;
    }
    if (install)
      receive_all(*s, remote_meta, remote, 1000);
    run(*s);
  }
  return states;
}

TEST(SnapshotStorage, EveryCrashStateOfSnapshotOperationsRecovers) {
  size_t states = 0;
  for (uint64_t local_index : {5, 20, 40, 59, 60})
    for (uint64_t segment_bytes : {512, 1024, 4096})
      states += explore_snapshot_crashes(local_index, segment_bytes);
  EXPECT_GE(states, 1000u);
}

// The state machine streams its snapshot: its size and checksum are known only at the end, and
// go into the header at the front of the file. Whatever they are, it loads back, and loading
// reads it a chunk at a time.
TEST(SnapshotStorage, AStreamedSnapshotLoadsWithTheSizeAndChecksumKnownAtTheEnd) {
  uint64_t index = 10;
  for (size_t size : {size_t{0}, size_t{1}, size_t{127}, size_t{1000}, size_t{70000}}) {
    auto fs = std::make_shared<crash_disk>();
    auto o = options(fs);
    o.read_chunk_bytes = 4096;
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i)
      data[i] = static_cast<char>(i * 7 + size);
    {
      durable_storage s{o};
      s.load();
      append(s, 1, 20, 1);
      auto meta = meta_for(index, 1, "");
      meta.add_members()->set_id("n1");
      s.save_begin(meta);
      for (size_t at = 0; at < size; at += 333)
        s.save_append(std::string_view{data}.substr(at, 333));
      auto saved = s.save_finish();
      EXPECT_EQ(saved.size(), size);
      EXPECT_EQ(saved.crc32c(), crc32c(data));
      EXPECT_EQ(saved.members_size(), 1);
      EXPECT_EQ(read_snapshot_data(s), data);
    }
    durable_storage again{o};
    auto rec = again.load();
    ASSERT_TRUE(rec.snapshot) << size;
    EXPECT_EQ(rec.snapshot->size(), size);
    EXPECT_EQ(rec.snapshot->crc32c(), crc32c(data));
    EXPECT_EQ(read_snapshot_data(again), data) << size;
    EXPECT_LE(fs->largest_read(), 4096u + 64) << "a snapshot is never read whole";
    index += 10;
  }
}

// A restore reads the snapshot it opened, even when a newer one replaces it meanwhile (on a
// real file system: the file is removed while it is open).
TEST(SnapshotStorage, ARestoreReadsTheSnapshotItOpenedWhileANewerOneReplacesIt) {
  char dir[] = "/tmp/cafraft-snapshot-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  {
    durable_options o;
    o.dir = std::string{dir} + "/n1";
    o.node_id = "n1";
    o.logger_name = "snapshot-test";
    durable_storage s{o};
    s.load();
    append(s, 1, 20, 1);
    std::string older(100000, 'o'), newer(5000, 'n');
    s.save_snapshot(meta_for(10, 1, older), older);
    auto in = s.open_snapshot();
    ASSERT_TRUE(in);
    char first[10];
    ASSERT_TRUE(in->read_exact(first, sizeof first));
    s.save_snapshot(meta_for(15, 1, newer), newer);
    EXPECT_EQ(std::string(first, sizeof first) + read_all(*in), older);
    EXPECT_EQ(read_snapshot_data(s), newer);
  }
  std::filesystem::remove_all(dir);
}

TEST(SnapshotStorage, ADamagedSnapshotRefusesToStartOrIsDiscardedOnRequest) {
  auto fs = std::make_shared<crash_disk>();
  std::string data(800, 'z');
  {
    durable_storage s{options(fs)};
    s.load();
    append(s, 1, 20, 1);
    s.save_snapshot(meta_for(15, 1, data), data);
  }
  std::string file;
  for (auto& name : fs->list("/data/n1"))
    if (name.rfind("snap-", 0) == 0)
      file = "/data/n1/" + name;
  ASSERT_FALSE(file.empty());
  auto bytes = fs->read(file);
  bytes[bytes.size() - 10] ^= 0x40;
  fs->poke(file, bytes);
  try {
    durable_storage{options(fs->clone())}.load();
    FAIL() << "started with a damaged snapshot";
  } catch (const storage_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << what;
    EXPECT_NE(what.find("checksum"), std::string::npos) << what;
  }
  durable_storage discarding{options(fs, true)};
  auto rec = discarding.load();
  EXPECT_FALSE(rec.snapshot);
  EXPECT_TRUE(rec.log.empty());
  EXPECT_TRUE(rec.hard_state.resyncing());
  EXPECT_EQ(count_files(*fs, "snap-"), 1u); // set aside as *.discarded, never deleted
}

} // namespace
} // namespace cafraft::test
