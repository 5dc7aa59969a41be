// Tests of the in-memory crash disk (tests/crash_disk.hpp) that the storage tests stand on:
// which operations a crash keeps, torn writes, directory durability, and the injected faults.
#include <cerrno>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/crash_disk.hpp"

namespace cafraft::test {
namespace {

constexpr size_t whole = std::string::npos;

class CrashDisk : public ::testing::Test {
protected:
  // Directory "d" holding the empty files `names`, durably (synced and linked).
  void with_files(const std::vector<std::string>& names) {
    d.make_dirs("d");
    for (auto& name : names) {
      d.append("d/" + name, "");
      d.sync("d/" + name);
    }
    d.sync_dir("d");
  }

  crash_disk d;
};

TEST_F(CrashDisk, UnsyncedAppendsAreLostByACrashThatKeepsNothing) {
  with_files({"a"});
  d.append("d/a", "synced");
  d.sync("d/a");
  d.append("d/a", "-lost");
  d.append("d/new", "never linked");
  EXPECT_EQ(d.read("d/a"), "synced-lost");
  EXPECT_EQ(d.pending(), 3u); // the append to a, the creation of new, the append to new
  auto c = d.crashed(0);
  EXPECT_EQ(c->read("d/a"), "synced");
  EXPECT_FALSE(c->exists("d/new"));
  EXPECT_EQ(c->pending(), 0u);
}

TEST_F(CrashDisk, SyncedDataSurvivesEveryCrashState) {
  with_files({"wal", "other"});
  d.append("d/wal", "one|");
  d.sync("d/wal");
  d.append("d/wal", "two|");
  d.write_at("d/wal", 4, "TWO");
  d.append("d/other", "x");
  d.truncate("d/wal", 6);
  size_t states = 0;
  for (size_t keep = 0; keep <= d.pending(); ++keep) {
    size_t bytes = keep == 0 ? 0 : d.pending_bytes(keep - 1);
    for (size_t torn = 0; torn <= bytes; ++torn, ++states) {
      auto wal = d.crashed(keep, torn)->read("d/wal");
      EXPECT_EQ(wal.substr(0, 4), "one|") << keep << "/" << torn << ": " << wal;
    }
  }
  EXPECT_EQ(states, 1u + 5 + 4 + 2 + 1);
  EXPECT_EQ(d.crashed(0)->read("d/wal"), "one|");
  EXPECT_EQ(d.crashed(2, 2)->read("d/wal"), "one|TWo|");
  EXPECT_EQ(d.crashed(4)->read("d/wal"), "one|TW");
}

TEST_F(CrashDisk, KeepsExactlyTheFirstPendingOperationsInOrder) {
  with_files({"a", "b"});
  d.append("d/a", "1");
  d.append("d/b", "x");
  d.append("d/a", "22");
  d.append("d/b", "yy");
  ASSERT_EQ(d.pending(), 4u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"", ""}, {"1", ""}, {"1", "x"}, {"122", "x"}, {"122", "xyy"}};
  for (size_t keep = 0; keep <= 4; ++keep) {
    auto c = d.crashed(keep);
    EXPECT_EQ(c->read("d/a"), expected[keep].first) << keep;
    EXPECT_EQ(c->read("d/b"), expected[keep].second) << keep;
  }
  EXPECT_THROW(d.crashed(5), std::out_of_range);
}

TEST_F(CrashDisk, TornLastWriteKeepsExactlyItsFirstBytes) {
  with_files({"a", "b"});
  d.append("d/a", "abcdef");
  d.sync("d/a");
  d.append("d/a", "hello");
  d.write_at("d/b", 2, "XYZ");
  EXPECT_EQ(d.pending_bytes(0), 5u);
  EXPECT_EQ(d.pending_bytes(1), 3u);
  EXPECT_EQ(d.crashed(1, 0)->read("d/a"), "abcdef");
  EXPECT_EQ(d.crashed(1, 2)->read("d/a"), "abcdefhe");
  EXPECT_EQ(d.crashed(1, whole)->read("d/a"), "abcdefhello");
  EXPECT_EQ(d.crashed(2, 0)->read("d/b"), "");
  EXPECT_EQ(d.crashed(2, 1)->read("d/b"), std::string("\0\0X", 3));
  EXPECT_EQ(d.crashed(2, 1)->read("d/a"), "abcdefhello"); // only the last kept op is torn
  // The tear of a non-data operation is ignored.
  d.truncate("d/a", 3);
  EXPECT_EQ(d.pending_bytes(2), 0u);
  EXPECT_EQ(d.crashed(3, 0)->read("d/a"), "abc");
}

TEST_F(CrashDisk, SyncOfOneFileLeavesEarlierWritesToAnotherPending) {
  with_files({"a", "b"});
  d.append("d/a", "A");
  d.append("d/b", "B");
  d.sync("d/b");
  ASSERT_EQ(d.pending(), 1u);
  auto lost = d.crashed(0);
  EXPECT_EQ(lost->read("d/a"), "");
  EXPECT_EQ(lost->read("d/b"), "B");
  auto kept = d.crashed(1);
  EXPECT_EQ(kept->read("d/a"), "A");
  EXPECT_EQ(kept->read("d/b"), "B");
}

TEST_F(CrashDisk, CreationIsDurableOnlyAfterSyncDir) {
  with_files({});
  d.append("d/seg", "data");
  d.sync("d/seg");
  EXPECT_FALSE(d.crashed(0)->exists("d/seg")); // the data is synced, but no name reaches it
  d.sync_dir("d");
  EXPECT_EQ(d.pending(), 0u);
  EXPECT_EQ(d.crashed(0)->read("d/seg"), "data");
}

TEST_F(CrashDisk, RenameIsLostUntilSyncDirAndKeptAfter) {
  with_files({"tmp", "final"});
  d.append("d/final", "old");
  d.sync("d/final");
  d.append("d/tmp", "new");
  d.sync("d/tmp");
  d.rename("d/tmp", "d/final");
  EXPECT_EQ(d.read("d/final"), "new");
  EXPECT_FALSE(d.exists("d/tmp"));
  auto before = d.crashed(0);
  EXPECT_EQ(before->read("d/final"), "old");
  EXPECT_EQ(before->read("d/tmp"), "new");
  EXPECT_EQ(d.crashed(1)->read("d/final"), "new");
  d.sync_dir("d");
  auto after = d.crashed(0);
  EXPECT_EQ(after->read("d/final"), "new");
  EXPECT_FALSE(after->exists("d/tmp"));
}

TEST_F(CrashDisk, SyncAfterRenameCoversWritesMadeUnderTheOldName) {
  with_files({"tmp"});
  d.append("d/tmp", "payload");
  d.rename("d/tmp", "d/final");
  d.sync_dir("d");
  EXPECT_EQ(d.crashed(0)->read("d/final"), ""); // linked, but its data was never synced
  d.sync("d/final");
  EXPECT_EQ(d.crashed(0)->read("d/final"), "payload");
}

TEST_F(CrashDisk, RemoveIsLostUntilSyncDirAndKeptAfter) {
  with_files({"a"});
  d.append("d/a", "x");
  d.sync("d/a");
  d.remove("d/a");
  EXPECT_FALSE(d.exists("d/a"));
  EXPECT_THROW(d.read("d/a"), disk_error);
  EXPECT_EQ(d.crashed(0)->read("d/a"), "x");
  d.sync_dir("d");
  EXPECT_FALSE(d.crashed(0)->exists("d/a"));
}

TEST_F(CrashDisk, RandomCrashesAreSyncedDataPlusAPrefixOfTheRest) {
  with_files({"log"});
  d.append("d/log", "durable.");
  d.sync("d/log");
  const std::string rest = "aaaa"
                           "bbbb"
                           "cccc";
  for (size_t i = 0; i < rest.size(); i += 4)
    d.append("d/log", rest.substr(i, 4));
  std::mt19937_64 rng(42);
  std::vector<bool> seen(rest.size() + 1);
  for (int i = 0; i < 400; ++i) {
    auto log = d.crash(rng)->read("d/log");
    ASSERT_GE(log.size(), 8u);
    ASSERT_EQ(log, "durable." + rest.substr(0, log.size() - 8));
    seen[log.size() - 8] = true;
  }
  for (size_t n = 0; n <= rest.size(); ++n) // every tear is reachable
    EXPECT_TRUE(seen[n]) << n;
}

TEST_F(CrashDisk, FullDiskFailsWithNoSpaceAndWritesNothing) {
  with_files({"a"});
  d.set_capacity(10);
  d.append("d/a", "12345678");
  try {
    d.append("d/a", "abc");
    FAIL() << "no ENOSPC";
  } catch (const disk_error& e) {
    EXPECT_TRUE(e.no_space());
    EXPECT_EQ(e.code(), ENOSPC);
    EXPECT_EQ(e.path(), "d/a");
  }
  EXPECT_EQ(d.read("d/a"), "12345678");
  EXPECT_THROW(d.append("d/b", "xyz"), disk_error);
  EXPECT_FALSE(d.exists("d/b"));
  d.write_at("d/a", 0, "ABCDEFGHIJ"); // grows by two bytes: exactly full
  EXPECT_EQ(d.read("d/a"), "ABCDEFGHIJ");
  EXPECT_THROW(d.write_at("d/a", 10, "k"), disk_error);
  EXPECT_EQ(d.bytes_written(), 18u);
}

TEST_F(CrashDisk, FailedSyncThrowsForeverAndMakesNothingDurable) {
  with_files({"a"});
  d.fail_sync_after(1, EIO);
  d.append("d/a", "one");
  d.sync("d/a");
  d.append("d/a", "two");
  for (int i = 0; i < 2; ++i) {
    try {
      d.sync("d/a");
      FAIL() << "sync succeeded";
    } catch (const disk_error& e) {
      EXPECT_EQ(e.op(), "fdatasync");
      EXPECT_EQ(e.code(), EIO);
      EXPECT_FALSE(e.no_space());
    }
  }
  EXPECT_EQ(d.crashed(0)->read("d/a"), "one");
  EXPECT_EQ(d.syncs(), 2u); // one in with_files, one here
  d.sync_dir("d");          // not affected
}

TEST_F(CrashDisk, CrashAtOpThrowsBeforeTheOperationTakesEffect) {
  with_files({"a"});
  auto before = d.ops();
  d.crash_at_op(2);
  d.append("d/a", "1");
  d.sync("d/a");
  EXPECT_THROW(d.append("d/a", "2"), crash_disk::crashed_now);
  EXPECT_EQ(d.read("d/a"), "1");
  EXPECT_EQ(d.ops(), before + 2);
  EXPECT_THROW(d.remove("d/a"), crash_disk::crashed_now); // the power stays off
  EXPECT_TRUE(d.exists("d/a"));
  d.crash_at_op(std::string::npos);
  d.append("d/a", "3");
  EXPECT_EQ(d.read("d/a"), "13");
  EXPECT_EQ(d.crashed(0)->read("d/a"), "1");
}

TEST_F(CrashDisk, LockIsExclusiveUntilReleased) {
  with_files({});
  auto held = d.lock("d/LOCK");
  try {
    d.lock("d/LOCK");
    FAIL() << "locked twice";
  } catch (const disk_error& e) {
    EXPECT_EQ(e.op(), "lock");
    EXPECT_EQ(e.code(), EWOULDBLOCK);
  }
  EXPECT_NE(d.lock("d/OTHER"), nullptr);
  EXPECT_NE(d.crashed(0)->lock("d/LOCK"), nullptr); // a crash ends the process holding it
  held.reset();
  EXPECT_NE(d.lock("d/LOCK"), nullptr);
}

TEST_F(CrashDisk, FileOperationsBehaveLikeAFileSystem) {
  with_files({"b", "a"});
  d.make_dirs("d/sub/deeper");
  d.append("d/sub/x", "");
  EXPECT_EQ(d.list("d"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.list("d/sub/"), (std::vector<std::string>{"x"}));
  EXPECT_TRUE(d.exists("d/sub/deeper"));
  d.write_at("d/a", 3, "x");
  EXPECT_EQ(d.read("d/a"), std::string("\0\0\0x", 4));
  d.truncate("d/a", 6);
  EXPECT_EQ(d.read("d/a"), std::string("\0\0\0x\0\0", 6));
  d.truncate("d/a", 1);
  EXPECT_EQ(d.read("d/a"), std::string(1, '\0'));
  try {
    d.read("d/missing");
    FAIL() << "read a missing file";
  } catch (const disk_error& e) {
    EXPECT_EQ(e.op(), "open");
    EXPECT_EQ(e.code(), ENOENT);
  }
  EXPECT_THROW(d.append("nodir/a", "x"), disk_error);
  EXPECT_THROW(d.rename("d/missing", "d/a"), disk_error);
  EXPECT_THROW(d.truncate("d/missing", 0), disk_error);
}

TEST_F(CrashDisk, PokeSetsCurrentAndDurableContent) {
  with_files({"a"});
  d.append("d/a", "pending");
  d.poke("d/a", "corrupt");
  d.poke("d/new", "fresh");
  EXPECT_EQ(d.read("d/a"), "corrupt");
  for (size_t keep = 0; keep <= d.pending(); ++keep) {
    EXPECT_EQ(d.crashed(keep)->read("d/a"), "corrupt") << keep;
    EXPECT_EQ(d.crashed(keep)->read("d/new"), "fresh") << keep;
  }
}

} // namespace
} // namespace cafraft::test
