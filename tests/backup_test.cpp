// The backup file (runtime/backup.hpp): written and read back a chunk at a time, refused with
// its reason when it is cut short, damaged, of another format or of a newer one, and restored
// into a new data directory, or into nothing when anything is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <cafraft/runtime/backup.hpp>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/recovery.hpp>
#include <cafraft/runtime/rules.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft::test {
namespace {

namespace fs = std::filesystem;

class BackupFile : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cafraft-backup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }

  /// A backup of `data` at index 42, term 3, members n1..n3, in `path`, written in pieces.
  pb::BackupHeader save(const std::string& path, const std::string& data) {
    pb::BackupHeader h;
    h.set_cluster_id("prod");
    h.set_node_id("n2");
    auto& m = *h.mutable_meta();
    m.set_index(42);
    m.set_term(3);
    for (auto id : {"n1", "n2", "n3"}) {
      auto* x = m.add_members();
      x->set_id(id);
      x->set_address(std::string{id} + ":4000");
    }
    m.set_size(data.size());
    m.set_crc32c(crc32c(data));
    backup::writer w{path, h};
    for (size_t at = 0; at < data.size(); at += 1000)
      w.append(std::string_view{data}.substr(at, 1000));
    w.finish();
    return h;
  }

  std::string read(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void write(const std::string& path, const std::string& bytes) {
    std::ofstream{path, std::ios::binary | std::ios::trunc} << bytes;
  }

  /// The reason reader gives for `path`, or "" when it opens.
  std::string refusal(const std::string& path) {
    try {
      backup::reader r{path};
      return {};
    } catch (const std::exception& ex) {
      return ex.what();
    }
  }

  std::string dir;
};

std::string some_data(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>(i * 31 + 7);
  return out;
}

TEST_F(BackupFile, WrittenInPiecesReadsBackWithItsHeader) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{5000}, size_t{3u << 20}}) {
    auto path = dir + "/b-" + std::to_string(n);
    auto data = some_data(n);
    save(path, data);
    EXPECT_FALSE(fs::exists(path + ".tmp")) << "written aside, then renamed";
    backup::reader r{path};
    EXPECT_EQ(r.header().format(), backup::format);
    EXPECT_EQ(r.header().cluster_id(), "prod");
    EXPECT_EQ(r.header().meta().index(), 42u);
    EXPECT_EQ(r.header().meta().members_size(), 3);
    std::string back;
    size_t biggest = 0;
    r.read_data([&](std::string_view piece) {
      back.append(piece);
      biggest = std::max(biggest, piece.size());
    });
    EXPECT_EQ(back, data) << n;
    EXPECT_LE(biggest, size_t{1} << 20) << "read a chunk at a time";
    EXPECT_NE(backup::describe(r.header()).find("n1@n1:4000, n2@n2:4000"), std::string::npos);
  }
}

TEST_F(BackupFile, AWriterThatDoesNotFinishLeavesNothing) {
  auto path = dir + "/b";
  pb::BackupHeader h;
  h.mutable_meta()->set_index(1);
  h.mutable_meta()->set_size(10);
  {
    backup::writer w{path, h};
    w.append("abc");
    EXPECT_THROW(w.finish(), std::runtime_error) << "3 bytes where the header says 10";
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(BackupFile, BadFilesAreRefusedWithTheirReason) {
  auto path = dir + "/good";
  save(path, some_data(5000));
  auto bytes = read(path);
  struct bad {
    std::string name, bytes, reason;
  };
  auto flipped = [&](size_t at) {
    auto b = bytes;
    b[at] ^= 0x01;
    return b;
  };
  // A newer format: the header says 2, with a good frame.
  pb::BackupHeader newer = backup::reader{path}.header();
  newer.set_format(2);
  auto newer_bytes = std::string{"cafraft-backup\n\0", 16} + wal::frame(newer.SerializeAsString()) +
                     some_data(5000);
  std::vector<bad> cases{
      {"empty", "", "not a cafraft backup"},
      {"other", "hello, world: not a backup at all", "not a cafraft backup"},
      {"in the header", bytes.substr(0, 30), "cut short in its header"},
      {"cut", bytes.substr(0, bytes.size() - 1), "cut short or too long"},
      {"longer", bytes + "x", "cut short or too long"},
      {"damaged data", flipped(bytes.size() - 10), "CRC32C"},
      {"damaged header", flipped(30), "damaged header"},
      {"newer", newer_bytes, "written by cafraft backup format 2, this binary reads up to 1"},
  };
  for (auto& c : cases) {
    write(dir + "/" + c.name, c.bytes);
    auto why = refusal(dir + "/" + c.name);
    EXPECT_NE(why.find(c.reason), std::string::npos) << c.name << ": " << why;
    EXPECT_NE(why.find(dir + "/" + c.name), std::string::npos) << "names the file: " << why;
  }
  EXPECT_NE(refusal(dir + "/missing").find("cannot open"), std::string::npos);
}

TEST_F(BackupFile, ARestoreMakesANewClusterOfOneWithTheBackupsState) {
  auto path = dir + "/b";
  auto data = some_data(70000);
  save(path, data);
  durable_options o;
  o.dir = dir + "/r1";
  o.node_id = "r1";
  o.logger_name = "backup-test";
  auto meta = backup::restore(path, o, {"r1", "10.0.0.9:4000"});
  EXPECT_EQ(meta.index(), 42u);
  ASSERT_EQ(meta.members_size(), 1);
  EXPECT_EQ(meta.members(0).id(), "r1");
  // The directory is a node's: it loads with the snapshot, its data and the term; a new
  // cluster id was recorded, and another is refused.
  {
    durable_storage s{o};
    auto rec = s.load();
    ASSERT_TRUE(rec.snapshot);
    EXPECT_EQ(rec.snapshot->index(), 42u);
    EXPECT_EQ(rec.snapshot->term(), 3u);
    ASSERT_EQ(rec.snapshot->members_size(), 1);
    EXPECT_EQ(rec.snapshot->members(0).address(), "10.0.0.9:4000");
    EXPECT_TRUE(rec.log.empty());
    EXPECT_EQ(rec.hard_state.term(), 3u);
    EXPECT_EQ(read_snapshot_data(s), data);
  }
  auto other = o;
  other.cluster_id = "prod";
  EXPECT_THROW(durable_storage{other}.load(), storage_error) << "a new cluster id, not prod's";
  // Once more into the same directory: refused, and the directory is as it was.
  auto before = fs::last_write_time(o.dir);
  try {
    backup::restore(path, o, {"r1", "10.0.0.9:4000"});
    ADD_FAILURE() << "restored into a directory with data";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("is not empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::last_write_time(o.dir), before);
  // With the cluster id it is told to keep.
  auto kept = o;
  kept.dir = dir + "/r2";
  kept.cluster_id = "prod";
  backup::restore(path, kept, {"r2", "10.0.0.8:4000"});
  EXPECT_NO_THROW(durable_storage{kept}.load());
}

TEST_F(BackupFile, ARestoreOfABadFileCreatesNothing) {
  auto path = dir + "/b";
  save(path, some_data(5000));
  auto bytes = read(path);
  write(path, bytes.substr(0, bytes.size() - 7));
  durable_options o;
  o.dir = dir + "/r1";
  o.node_id = "r1";
  o.logger_name = "backup-test";
  EXPECT_THROW(backup::restore(path, o, {"r1", "a:1"}), std::runtime_error);
  EXPECT_FALSE(fs::exists(o.dir));
}

// --force-new-cluster (runtime/recovery.hpp): a survivor's directory gets a configuration entry
// with the survivor as the only voter, in a new term, after everything it holds.
TEST_F(BackupFile, AForcedNewClusterKeepsTheLogAndLeavesOneVoter) {
  durable_options o;
  o.dir = dir + "/n2";
  o.node_id = "n2";
  o.cluster_id = "prod";
  o.logger_name = "backup-test";
  EXPECT_THROW(force_new_cluster(o, {"n2", "b:1"}), std::runtime_error) << "no data";
  {
    durable_storage s{o};
    s.load();
    persist_batch b;
    b.hard_state.emplace();
    b.hard_state->set_term(4);
    b.hard_state->set_voted_for("n1");
    for (uint64_t i = 1; i <= 10; ++i) {
      pb::LogEntry e;
      e.set_index(i);
      e.set_term(i < 6 ? 2 : 4);
      e.set_data("entry " + std::to_string(i));
      b.entries.push_back(e);
    }
    std::vector<persist_batch> batches;
    batches.push_back(std::move(b));
    s.write(std::move(batches));
  }
  auto forced = force_new_cluster(o, {"n2", "b:1"});
  EXPECT_EQ(forced.last_index, 10u);
  EXPECT_EQ(forced.config_index, 11u);
  EXPECT_EQ(forced.term, 5u);
  durable_storage s{o};
  auto rec = s.load();
  ASSERT_EQ(rec.log.size(), 11u);
  EXPECT_EQ(rec.log[9].data(), "entry 10") << "the log is kept";
  EXPECT_EQ(rec.hard_state.term(), 5u);
  EXPECT_EQ(rec.hard_state.voted_for(), "") << "no vote in the new term";
  auto rs = rules::recover(rec, std::move(rec.log), "n2", {{"n1", "a:1"}, {"n2", "b:1"}});
  ASSERT_EQ(rs.config.members.size(), 1u);
  EXPECT_EQ(rs.config.members[0].id, "n2");
  EXPECT_TRUE(rs.config.is_voter("n2"));
}

} // namespace
} // namespace cafraft::test
