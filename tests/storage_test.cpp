// Durable storage: the checksum, the record framing, recovery after every crash state of the
// crashable disk, damage at every byte of the last records, and real files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "crash_disk.hpp"
#include <cafraft/messages/storage.pb.h>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft::test {
namespace {

pb::LogEntry entry(uint64_t index, uint64_t term, const std::string& data) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data(data);
  return e;
}

pb::HardState hard_state(uint64_t term, const std::string& vote) {
  pb::HardState hs;
  hs.set_term(term);
  hs.set_voted_for(vote);
  return hs;
}

durable_options options(std::shared_ptr<disk> fs, uint64_t segment_bytes = 64ull << 20) {
  durable_options o;
  o.dir = "/data/n1";
  o.node_id = "n1";
  o.cluster_id = "c1";
  o.segment_bytes = segment_bytes;
  o.preallocate_bytes = 1024; // small reservations: writes both fill and extend them
  o.read_chunk_bytes = 64;    // records span chunks, and many are larger than one
  o.fs = std::move(fs);
  o.logger_name = "storage-test"; // quiet unless CAFRAFT_TEST_LOG is set
  return o;
}

// The state a write leaves behind, as the storage's user sees it.
struct model {
  pb::HardState hs;
  std::vector<pb::LogEntry> log;

  void apply(const persist_batch& b) {
    if (b.hard_state)
      hs = *b.hard_state;
    if (b.truncate_from > 0 && b.truncate_from <= log.size())
      log.resize(b.truncate_from - 1);
    for (auto& e : b.entries)
      log.push_back(e);
  }
};

bool same_log(const std::vector<pb::LogEntry>& a, const std::vector<pb::LogEntry>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].SerializeAsString() != b[i].SerializeAsString())
      return false;
  return true;
}

bool same_hs(const pb::HardState& a, const pb::HardState& b) {
  return a.term() == b.term() && a.voted_for() == b.voted_for();
}

// A workload like a node's: terms go up, votes are cast, entries are appended in batches of
// several, and a new leader's entries replace a conflicting suffix now and then.
std::vector<std::vector<persist_batch>> workload(uint64_t seed, size_t writes) {
  std::mt19937_64 rng{seed};
  std::vector<std::vector<persist_batch>> out;
  uint64_t term = 1, last = 0;
  for (size_t w = 0; w < writes; ++w) {
    std::vector<persist_batch> group;
    size_t batches = 1 + rng() % 3;
    for (size_t b = 0; b < batches; ++b) {
      persist_batch pb;
      switch (rng() % 6) {
      case 0: // a new term and a vote
        ++term;
        pb.hard_state = hard_state(term, "n" + std::to_string(1 + rng() % 3));
        break;
      case 1: // a conflicting suffix replaced
        if (last > 2) {
          pb.truncate_from = last - rng() % 3;
          last = pb.truncate_from - 1;
        }
        [[fallthrough]];
      default:
        for (size_t k = 0, n = 1 + rng() % 4; k < n; ++k)
          pb.entries.push_back(entry(++last, term, std::string(rng() % 200, 'a' + rng() % 26)));
      }
      group.push_back(std::move(pb));
    }
    out.push_back(std::move(group));
  }
  return out;
}

// The storage logs a warning for every torn tail it cuts: thousands here.
const bool quiet = [] {
  auto lvl = std::getenv("CAFRAFT_TEST_LOG");
  get_logger("storage-test")->set_level(lvl ? spdlog::level::from_str(lvl) : spdlog::level::off);
  return true;
}();

TEST(Crc32c, MatchesTheRfc3720Vectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i)
    inc.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
  // Extending in pieces gives the same as one pass.
  EXPECT_EQ(crc32c("6789", crc32c("12345")), crc32c("123456789"));
  EXPECT_EQ(crc32c_portable("123456789"), 0xE3069283u);
}

TEST(Crc32c, HardwareAndTablesAgreeOnEveryLengthAndContinuation) {
  std::mt19937 rng{7};
  std::string data;
  for (int i = 0; i < 300; ++i)
    data.push_back(static_cast<char>(rng()));
  for (size_t n = 0; n <= data.size(); ++n) {
    std::string_view part{data.data(), n};
    ASSERT_EQ(crc32c(part), crc32c_portable(part)) << n;
    ASSERT_EQ(crc32c(part, 0x12345678u), crc32c_portable(part, 0x12345678u)) << n;
  }
}

TEST(WalFrame, RoundTripsAndTellsTornFromDamaged) {
  std::string file = wal::frame("first") + wal::frame("") + wal::frame("third record");
  auto r = wal::scan(file);
  ASSERT_EQ(r.end, wal::tail::clean);
  ASSERT_EQ(r.payloads.size(), 3u);
  EXPECT_EQ(r.payloads[2], "third record");
  // A cut anywhere is a torn tail; the records before it stay.
  for (size_t cut = 0; cut < file.size(); ++cut) {
    auto t = wal::scan(std::string_view{file}.substr(0, cut));
    EXPECT_NE(t.end, wal::tail::corrupt) << cut;
    EXPECT_LE(t.valid_bytes, cut);
  }
  // Zeros after the records: a file that grew without its data.
  EXPECT_EQ(wal::scan(file + std::string(40, '\0')).end, wal::tail::torn);
  // In a preallocated segment they are the space reserved after the records.
  auto reserved = wal::scan(file + std::string(40, '\0'), wal::zeros::reserved);
  EXPECT_EQ(reserved.end, wal::tail::clean);
  EXPECT_EQ(reserved.payloads.size(), 3u);
  EXPECT_EQ(reserved.valid_bytes, file.size());
  // A write torn anywhere in reserved space leaves zeros after the tear: a torn tail, never
  // damage, when the last byte of each record is not zero, as WAL records' seal makes it.
  std::string sealed = wal::frame("first") + wal::frame("second") + wal::frame("third record");
  for (size_t cut = 0; cut < sealed.size(); ++cut) {
    auto t = wal::scan(sealed.substr(0, cut) + std::string(sealed.size() - cut + 40, '\0'),
                       wal::zeros::reserved);
    EXPECT_NE(t.end, wal::tail::corrupt) << cut;
    EXPECT_LE(t.valid_bytes, cut);
  }
  // A changed byte inside a whole record is damage.
  auto bad = file;
  bad[wal::header_size + 1] ^= 0x10;
  auto d = wal::scan(bad);
  EXPECT_EQ(d.end, wal::tail::corrupt);
  EXPECT_EQ(d.valid_bytes, 0u);
}

// A file read in chunks ends its records where, and as, the same file read whole does: at every
// cut, every bit flip and every stray byte in reserved space, with any chunk size, and reading
// no more than a chunk (or a record) at a time.
TEST(WalReader, ReadInChunksDecidesAsTheWholeFile) {
  std::string records;
  for (size_t len : {5u, 0u, 70u, 12u, 200u, 1u})
    records += wal::frame(std::string(len, 'a') + '\x3c'); // sealed: the last byte is not zero
  std::vector<std::string> files;
  for (size_t pos = 0; pos <= records.size(); ++pos) {
    files.push_back(records.substr(0, pos));
    files.push_back(records.substr(0, pos) + std::string(records.size() - pos + 100, '\0'));
  }
  for (size_t pos = 0; pos < records.size() + 100; ++pos) {
    auto flipped = records + std::string(100, '\0');
    flipped[pos] = static_cast<char>(flipped[pos] ^ 0x21);
    files.push_back(flipped);
  }
  for (auto& file : files) {
    for (auto after : {wal::zeros::torn, wal::zeros::reserved}) {
      auto whole = wal::scan(file, after);
      for (size_t chunk : {12u, 13u, 31u, 64u, 1000u}) {
        size_t largest = 0;
        wal::reader r{[&](uint64_t at, size_t len) {
                        largest = std::max(largest, len);
                        return at < file.size() ? file.substr(at, len) : std::string{};
                      },
                      after, chunk};
        std::vector<std::string> got;
        while (auto p = r.next())
          got.emplace_back(*p);
        SCOPED_TRACE(testing::Message() << "file of " << file.size() << " bytes, chunk " << chunk);
        ASSERT_EQ(got, std::vector<std::string>(whole.payloads.begin(), whole.payloads.end()));
        EXPECT_EQ(r.end(), whole.end);
        EXPECT_EQ(r.valid_bytes(), whole.valid_bytes);
        EXPECT_EQ(r.problem(), whole.problem);
        EXPECT_EQ(r.file_size(), file.size());
        EXPECT_LE(largest, std::max<size_t>(chunk, wal::header_size + 202));
      }
    }
  }
}

TEST(DurableStorage, NewDirectoryThenRecoversWhatWasWritten) {
  auto fs = std::make_shared<crash_disk>();
  model m;
  {
    durable_storage s{options(fs, 4096)};
    auto rec = s.load();
    EXPECT_EQ(rec.hard_state.term(), 0u);
    EXPECT_TRUE(rec.log.empty());
    for (auto& group : workload(7, 80)) {
      s.write(group);
      for (auto& b : group)
        m.apply(b);
    }
  }
  EXPECT_GT(fs->list("/data/n1").size(), 4u) << "small segments roll over";
  durable_storage again{options(fs, 4096)};
  auto rec = again.load();
  EXPECT_TRUE(same_hs(rec.hard_state, m.hs));
  EXPECT_TRUE(same_log(rec.log, m.log));
}

// A restart holds the entries after the snapshot, not the segments: they are read a chunk at a
// time, so that a node's memory after a restart does not grow with the size of its segments.
TEST(DurableStorage, RestartReadsTheWalAChunkAtATime) {
  auto fs = std::make_shared<crash_disk>();
  auto opts = options(fs);
  opts.read_chunk_bytes = durable_options{}.read_chunk_bytes;
  model m;
  {
    durable_storage s{opts};
    s.load();
    for (uint64_t i = 1; i <= 4000; ++i) {
      persist_batch b;
      b.entries.push_back(entry(i, 1, std::string(1000, static_cast<char>('a' + i % 26))));
      s.write({b});
      m.apply(b);
    }
  }
  auto segment = "/data/n1/" + fs->list("/data/n1").back();
  ASSERT_GT(fs->read(segment).size(), 3 * opts.read_chunk_bytes);
  auto img = fs->crashed(0); // the same files, its read counter at zero
  opts.fs = img;
  durable_storage again{opts};
  auto rec = again.load();
  EXPECT_TRUE(same_log(rec.log, m.log));
  EXPECT_LE(img->largest_read(), opts.read_chunk_bytes);
}

TEST(DurableStorage, GroupCommitSharesOneSyncAcrossBatches) {
  auto fs = std::make_shared<crash_disk>();
  durable_storage s{options(fs)};
  s.load();
  auto before = s.syncs();
  std::vector<persist_batch> group(50);
  for (uint64_t i = 0; i < 50; ++i)
    group[i].entries.push_back(entry(i + 1, 1, "v"));
  s.write(group);
  EXPECT_EQ(s.syncs() - before, 1u);
  persist_batch vote;
  vote.hard_state = hard_state(2, "n2");
  s.write({vote});
  EXPECT_EQ(s.syncs() - before, 2u);
}

// Every crash state of every write: the disk keeps what was synced plus any prefix of what was
// not, with the last write torn. After recovery the node has every entry and the vote it
// acknowledged (the state before the interrupted write) or the state after some of the batches
// of that write; never anything else, never a lost vote.
TEST(DurableStorage, EveryCrashStateKeepsWhatWasAcknowledged) {
  size_t states = 0, cut_tails = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto fs = std::make_shared<crash_disk>();
    auto groups = workload(seed, 40);
    model acked;
    auto s = std::make_unique<durable_storage>(options(fs, 2048));
    s->load();
    for (auto& group : groups) {
      // Candidate states after this write: before it, and after each of its batches.
      std::vector<model> allowed{acked};
      for (auto& b : group) {
        allowed.push_back(allowed.back());
        allowed.back().apply(b);
      }
      // Power fails before the n-th disk operation of the write, for every n.
      for (size_t n = 0;; ++n) {
        auto trial = fs->clone();
        durable_storage writer{options(trial, 2048)};
        writer.load();
        trial->crash_at_op(n);
        bool finished = true;
        try {
          writer.write(group);
        } catch (const crash_disk::crashed_now&) {
          finished = false;
        }
        for (size_t keep = 0; keep <= trial->pending(); ++keep) {
          std::vector<size_t> tears{std::string::npos};
          if (keep > 0) {
            auto bytes = trial->pending_bytes(keep - 1);
            for (size_t t : {size_t{0}, size_t{1}, size_t{11}, bytes / 2, bytes - 1})
              if (t < bytes)
                tears.push_back(t);
          }
          for (auto tear : tears) {
            auto image = trial->crashed(keep, tear);
            durable_storage rec_store{options(image, 2048)};
            recovered_state rec;
            try {
              rec = rec_store.load();
            } catch (const std::exception& ex) {
              FAIL() << "seed " << seed << ": recovery refused a crash state: " << ex.what();
            }
            ++states;
            bool log_ok = false;
            for (auto& a : allowed)
              log_ok = log_ok || same_log(rec.log, a.log);
            ASSERT_TRUE(log_ok) << "seed " << seed << ": a crash state lost acknowledged entries "
                                << "or invented some (log of " << rec.log.size() << ")";
            ASSERT_TRUE(same_hs(rec.hard_state, acked.hs) ||
                        same_hs(rec.hard_state, allowed.back().hs))
                << "seed " << seed << ": term " << rec.hard_state.term() << ", vote "
                << rec.hard_state.voted_for();
            // Never a second vote in the acknowledged term.
            if (rec.hard_state.term() == acked.hs.term() && !acked.hs.voted_for().empty()) {
              ASSERT_EQ(rec.hard_state.voted_for(), acked.hs.voted_for());
            }
            ASSERT_GE(rec.hard_state.term(), acked.hs.term());
            if (rec.log.size() != acked.log.size())
              ++cut_tails;
          }
        }
        if (finished)
          break;
      }
      s->write(group);
      acked = allowed.back();
    }
  }
  EXPECT_GE(states, 10000u);
  EXPECT_GT(cut_tails, 0u);
  std::printf("explored %zu crash states\n", states);
}

// Damage to the last records of a segment, at every byte: a cut there is a torn tail (the
// records before it stay), a flipped bit is either cut with the tail or refused with an error
// naming the file and offset; recovery never returns an entry that was not written.
TEST(DurableStorage, DamageAtEveryByteOfTheLastRecordsIsCutOrRefused) {
  auto fs = std::make_shared<crash_disk>();
  model m;
  {
    durable_storage s{options(fs)};
    s.load();
    for (auto& group : workload(3, 12)) {
      s.write(group);
      for (auto& b : group)
        m.apply(b);
    }
  }
  auto seg = std::string{"/data/n1/"} + fs->list("/data/n1").back();
  ASSERT_NE(seg.find("wal-"), std::string::npos);
  auto original = fs->read(seg);
  // The records end where the space reserved after them begins.
  auto data_end = original.find_last_not_of('\0') + 1;
  ASSERT_LT(data_end, original.size()) << "the segment has reserved space";
  auto tail_start = data_end > 600 ? data_end - 600 : 0;
  auto is_prefix = [&](const std::vector<pb::LogEntry>& log) {
    if (log.size() > m.log.size())
      return false;
    return same_log(log, std::vector<pb::LogEntry>(m.log.begin(), m.log.begin() + log.size()));
  };
  size_t refused = 0, cut = 0;
  for (size_t pos = tail_start; pos < data_end; ++pos) {
    // A write cut at `pos`: the file ends there, or (in reserved space) zeros follow.
    for (auto content : {original.substr(0, pos),
                         original.substr(0, pos) + std::string(original.size() - pos, '\0')}) {
      auto img = fs->crashed(0);
      img->poke(seg, content);
      durable_storage s{options(img)};
      auto rec = s.load(); // a cut is never refused
      EXPECT_TRUE(is_prefix(rec.log)) << "cut at " << pos;
    }
    for (int bit = 0; bit < 8; ++bit) {
      auto img = fs->crashed(0);
      auto damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ (1 << bit));
      img->poke(seg, damaged);
      durable_storage s{options(img)};
      try {
        auto rec = s.load();
        ASSERT_TRUE(is_prefix(rec.log)) << "started with wrong data after a flip at " << pos;
        ASSERT_LT(rec.log.size(), m.log.size()) << "a flip at " << pos << " went unnoticed";
        ++cut;
      } catch (const storage_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(seg + " at offset "), std::string::npos) << what;
        ++refused;
      }
    }
  }
  // A flipped bit in the reserved space after the records loses nothing: it is refused, or
  // cut when it sits where only a torn record header could be.
  for (size_t pos = data_end; pos < data_end + 64; ++pos) {
    auto img = fs->crashed(0);
    auto damaged = original;
    damaged[pos] = 1;
    img->poke(seg, damaged);
    durable_storage s{options(img)};
    try {
      auto rec = s.load();
      ASSERT_TRUE(same_log(rec.log, m.log)) << "a flip in reserved space at " << pos;
    } catch (const storage_error& e) {
      EXPECT_NE(std::string{e.what()}.find(seg + " at offset " + std::to_string(data_end)),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_GT(refused, 0u);
  std::printf("bit flips: %zu refused, %zu cut as a torn tail\n", refused, cut);
}

TEST(DurableStorage, DamageInAClosedSegmentIsRefusedUnlessTheLogIsDiscarded) {
  auto fs = std::make_shared<crash_disk>();
  {
    durable_storage s{options(fs, 2048)};
    s.load();
    persist_batch vote;
    vote.hard_state = hard_state(5, "n2");
    s.write({vote});
    for (auto& group : workload(11, 40))
      s.write(group);
  }
  std::vector<std::string> segments;
  for (auto& n : fs->list("/data/n1"))
    if (n.rfind("wal-", 0) == 0)
      segments.push_back("/data/n1/" + n);
  ASSERT_GE(segments.size(), 2u);
  auto first = segments[0];
  auto bytes = fs->read(first);
  // A closed segment was synced whole: one whose records are cut short is damage, whether
  // the file ends there or the space reserved after them follows.
  bytes.resize(bytes.find_last_not_of('\0') + 1 - 5);
  bytes.resize(bytes.size() + 100, '\0');
  fs->poke(first, bytes);
  {
    durable_storage s{options(fs, 2048)};
    try {
      s.load();
      FAIL() << "a damaged closed segment was accepted";
    } catch (const storage_error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(first + " at offset "), std::string::npos) << what;
      EXPECT_NE(what.find("discard"), std::string::npos) << "the error names the way out";
    }
  }
  auto opts = options(fs, 2048);
  opts.discard_corrupt_log = true;
  {
    durable_storage s{opts};
    auto rec = s.load();
    EXPECT_TRUE(rec.log.empty());
    EXPECT_TRUE(rec.hard_state.resyncing()) << "no vote until caught up";
    EXPECT_GE(rec.hard_state.term(), 5u) << "term and vote are kept";
    persist_batch b;
    b.entries.push_back(entry(1, 6, "again"));
    s.write({b});
  }
  // The damaged segments are set aside, not deleted; the restarted node still must not vote.
  bool kept = false;
  for (auto& n : fs->list("/data/n1"))
    kept = kept || n.find(".discarded") != std::string::npos;
  EXPECT_TRUE(kept);
  durable_storage s{options(fs, 2048)};
  auto rec = s.load();
  EXPECT_TRUE(rec.hard_state.resyncing());
  ASSERT_EQ(rec.log.size(), 1u);
  EXPECT_EQ(rec.log[0].data(), "again");
}

TEST(DurableStorage, RefusesAnotherNodesDirectoryAndAnotherCluster) {
  auto fs = std::make_shared<crash_disk>();
  { durable_storage{options(fs)}.load(); }
  auto other = options(fs);
  other.node_id = "n2";
  EXPECT_THROW(durable_storage{other}.load(), storage_error);
  auto cluster = options(fs);
  cluster.cluster_id = "c2";
  EXPECT_THROW(durable_storage{cluster}.load(), storage_error);
  fs->poke("/data/n1/MANIFEST", "garbage");
  EXPECT_THROW(durable_storage{options(fs)}.load(), storage_error);
}

TEST(DurableStorage, BothHardStateSlotsDamagedIsRefusedEvenWithDiscard) {
  auto fs = std::make_shared<crash_disk>();
  { durable_storage{options(fs)}.load(); }
  fs->poke("/data/n1/HARDSTATE", std::string(8192, 'x'));
  auto opts = options(fs);
  opts.discard_corrupt_log = true;
  EXPECT_THROW(durable_storage{opts}.load(), storage_error);
}

// Every file of a data directory carries its format: one written by a newer cafraft is refused
// by name ("written by cafraft format 2, this binary reads up to 1"), never taken for damage,
// and never set aside, even with discard_corrupt_log.
TEST(DurableStorage, AFileOfANewerFormatIsRefusedByNameNotAsDamaged) {
  auto make = [] {
    auto fs = std::make_shared<crash_disk>();
    durable_storage s{options(fs)};
    s.load();
    std::vector<persist_batch> batches(1);
    batches[0].hard_state.emplace();
    batches[0].hard_state->set_term(2);
    for (uint64_t i = 1; i <= 5; ++i) {
      pb::LogEntry e;
      e.set_index(i);
      e.set_term(2);
      batches[0].entries.push_back(e);
    }
    s.write(std::move(batches));
    pb::SnapshotMeta meta;
    meta.set_index(3);
    meta.set_term(2);
    s.save_snapshot(meta, "state");
    return fs;
  };
  auto first_frame = [](const std::string& bytes) {
    auto r = wal::scan(bytes);
    auto end = static_cast<size_t>(r.payloads[0].data() - bytes.data()) + r.payloads[0].size();
    return std::make_pair(std::string{r.payloads[0]}, end);
  };
  // Rewrites the first record of `file` with format 2.
  auto newer = [&](crash_disk& fs, const std::string& file, auto record) {
    auto bytes = fs.read(file);
    auto [payload, end] = first_frame(bytes);
    ASSERT_TRUE(record.ParseFromString(payload)) << file;
    record.set_format(2);
    fs.poke(file, wal::frame(record.SerializeAsString()) + bytes.substr(end));
  };
  auto snapshot_file = [](crash_disk& fs) {
    for (auto& name : fs.list("/data/n1"))
      if (name.rfind("snap-", 0) == 0)
        return "/data/n1/" + name;
    return std::string{};
  };
  std::vector<std::pair<std::string, std::function<std::string(crash_disk&)>>> files{
      {"MANIFEST",
       [&](crash_disk& fs) {
         newer(fs, "/data/n1/MANIFEST", pb::Manifest{});
         return std::string{"/data/n1/MANIFEST"};
       }},
      {"HARDSTATE",
       [&](crash_disk& fs) {
         newer(fs, "/data/n1/HARDSTATE", pb::HardStateSlot{});
         return std::string{"/data/n1/HARDSTATE"};
       }},
      {"snapshot",
       [&](crash_disk& fs) {
         auto file = snapshot_file(fs);
         newer(fs, file, pb::SnapshotHeader{});
         return file;
       }},
      {"WAL segment",
       [&](crash_disk& fs) {
         std::string seg;
         for (auto& name : fs.list("/data/n1"))
           if (name.rfind("wal-", 0) == 0)
             seg = "/data/n1/" + name;
         newer(fs, seg, pb::WalRecord{});
         return seg;
       }},
  };
  for (auto& [what, rewrite] : files) {
    auto fs = make();
    auto file = rewrite(*fs);
    for (bool discard : {false, true}) {
      auto o = options(fs);
      o.discard_corrupt_log = discard;
      try {
        durable_storage{o}.load();
        ADD_FAILURE() << what << ": a file of a newer format was loaded";
      } catch (const storage_error& e) {
        std::string why = e.what();
        EXPECT_NE(why.find(file + " was written by cafraft format 2, this binary reads up to 1"),
                  std::string::npos)
            << what << ": " << why;
      }
    }
    EXPECT_TRUE(fs->exists(file)) << what << ": never set aside";
  }
}

TEST(DurableStorage, FailedSyncIsFatalAndNeverRetried) {
  auto fs = std::make_shared<crash_disk>();
  durable_storage s{options(fs)};
  s.load();
  fs->fail_sync_after(0);
  persist_batch b;
  b.entries.push_back(entry(1, 1, "x"));
  EXPECT_THROW(s.write({b}), storage_error);
  fs->fail_sync_after(std::string::npos);
  EXPECT_THROW(s.write({b}), storage_error) << "a later write must not pretend all is well";
}

TEST(DurableStorage, FullDiskStopsWritesAndKeepsWhatWasAcknowledged) {
  auto fs = std::make_shared<crash_disk>();
  model m;
  {
    durable_storage s{options(fs)};
    s.load();
    uint64_t used = 0;
    for (auto& n : fs->list("/data/n1"))
      used += fs->read("/data/n1/" + n).size();
    fs->set_capacity(used + 3000);
    uint64_t i = 0;
    try {
      for (;; ++i) {
        persist_batch b;
        b.entries.push_back(entry(i + 1, 1, std::string(100, 'x')));
        s.write({b});
        m.apply(b);
      }
    } catch (const storage_full& e) {
      EXPECT_NE(std::string{e.what()}.find("full"), std::string::npos);
    }
    EXPECT_GT(i, 5u);
  }
  auto image = fs->crashed(fs->pending());
  durable_storage again{options(image)};
  auto rec = again.load();
  EXPECT_TRUE(same_log(rec.log, m.log));
}

// The real file system: a restart finds log, term and vote; a second open is locked out.
TEST(DurableStorage, RealFilesSurviveARestartAndAreLocked) {
  char tmpl[] = "/tmp/cafraft-storage-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  auto opts = options(nullptr);
  opts.dir = root + "/n1";
  opts.preallocate_bytes = durable_options{}.preallocate_bytes;
  model m;
  auto groups = workload(5, 40);
  auto write = [&](durable_storage& s, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      s.write(groups[i]);
      for (auto& b : groups[i])
        m.apply(b);
    }
  };
  {
    durable_storage s{opts};
    s.load();
    EXPECT_THROW(durable_storage{opts}.load(), storage_error) << "the directory is locked";
    write(s, 0, 30);
  }
  // The segment has space reserved after its records (fallocate: ext4 and tmpfs have it).
  auto segment = opts.dir + "/wal-0000000000000001.log";
  auto data = make_posix_disk()->read(segment);
  auto data_end = data.find_last_not_of('\0') + 1;
  EXPECT_GE(data.size(), opts.preallocate_bytes);
  EXPECT_LT(data_end + opts.preallocate_bytes / 2, data.size());
  {
    durable_storage s{opts};
    auto rec = s.load();
    EXPECT_TRUE(same_hs(rec.hard_state, m.hs));
    EXPECT_TRUE(same_log(rec.log, m.log));
    write(s, 30, 40); // after the records, into the reserved space
  }
  EXPECT_EQ(make_posix_disk()->read(segment).size(), data.size()) << "no growth: it was reserved";
  durable_storage s{opts};
  auto rec = s.load();
  EXPECT_TRUE(same_hs(rec.hard_state, m.hs));
  EXPECT_TRUE(same_log(rec.log, m.log));
  std::filesystem::remove_all(root);
}

} // namespace
} // namespace cafraft::test
