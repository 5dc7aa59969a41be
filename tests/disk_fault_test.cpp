// Disk faults on real files, below durable storage and below a whole node:
//   - fsync failures injected with libfiu's POSIX preload (fiu_posix_preload.so wraps fdatasync
//     and fsync; the tests turn its failpoints posix/io/sync/fdatasync and posix/io/sync/fsync
//     on and off through fiu-control.h). ctest runs this program with the preload, as
//     `fiu-run -x` does; run by hand without it, those tests are skipped:
//       fiu-run -x build/bin/cafraft-disk-fault-tests
//   - a full disk: a 1 MiB tmpfs mounted for the test (root only; skipped otherwise).
// Deterministic: no sleeps, nodes run under CAF's test scheduler in virtual time.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fiu-control.h>
#include <fiu.h>

#include "harness.hpp"
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::test {
namespace {

// The failpoints of libfiu's POSIX preload (strings /usr/lib/fiu/fiu_posix_preload.so).
constexpr const char* fdatasync_point = "posix/io/sync/fdatasync";
constexpr const char* fsync_point = "posix/io/sync/fsync";

const bool quiet = [] {
  auto lvl = std::getenv("CAFRAFT_TEST_LOG");
  get_logger("disk-fault-test")->set_level(lvl ? spdlog::level::from_str(lvl) : spdlog::level::off);
  return true;
}();

std::string errno_text(int err) {
  return std::strerror(err);
}

// A fresh directory under /tmp, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/cafraft-disk-fault-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("mkdtemp: " + errno_text(errno));
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// A tmpfs of the given size on a fresh directory, unmounted when this goes (failure or not).
class small_tmpfs {
public:
  explicit small_tmpfs(const std::string& size) {
    auto opts = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      int err = errno;
      error_ = "cannot mount a " + size + " tmpfs on " + dir_.path() + ": " + errno_text(err) +
               " (the full-disk tests need root, or CAP_SYS_ADMIN)";
    } else {
      mounted_ = true;
    }
  }
  ~small_tmpfs() {
    // Busy only if a test failed with files still open: detach it, it goes when they close.
    if (mounted_ && ::umount(dir_.path().c_str()) != 0)
      ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return dir_.path(); }

private:
  temp_dir dir_; // removed after the unmount
  bool mounted_ = false;
  std::string error_;
};

// Appends to the file at `path` until not one more byte fits on its file system. Returns
// ENOSPC when it got there, or the error that stopped it first.
int fill_up(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  std::string chunk(64 * 1024, 'f');
  int err = 0;
  for (size_t size = chunk.size(); size > 0; size /= 2) {
    while (::write(fd, chunk.data(), size) >= 0) {
    }
    err = errno;
    if (err != ENOSPC)
      break;
  }
  ::close(fd);
  return err;
}

// fdatasync and fsync fail with EIO while this lives (libfiu failpoints), and count their calls.
class sync_failure {
public:
  sync_failure() {
    fdatasync_calls = 0;
    fsync_calls = 0;
    auto eio = reinterpret_cast<void*>(static_cast<intptr_t>(EIO));
    fiu_enable_external(fdatasync_point, 1, eio, 0, &count_and_fail);
    fiu_enable_external(fsync_point, 1, eio, 0, &count_and_fail);
  }
  ~sync_failure() { disable(); }
  sync_failure(const sync_failure&) = delete;
  sync_failure& operator=(const sync_failure&) = delete;

  void disable() {
    fiu_disable(fdatasync_point);
    fiu_disable(fsync_point);
  }

  static inline std::atomic<int> fdatasync_calls{0};
  static inline std::atomic<int> fsync_calls{0};

private:
  static int count_and_fail(const char* name, int*, void**, unsigned int*) {
    ++(std::strcmp(name, fdatasync_point) == 0 ? fdatasync_calls : fsync_calls);
    return 1;
  }
};

// True when libfiu's POSIX preload wraps this process's libc calls: a failpoint makes a real
// fdatasync fail.
bool preload_active() {
  temp_dir d;
  auto file = d.path() + "/probe";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  fiu_enable(fdatasync_point, 1, reinterpret_cast<void*>(static_cast<intptr_t>(EIO)), 0);
  int rc = ::fdatasync(fd);
  fiu_disable(fdatasync_point);
  ::close(fd);
  return rc != 0;
}

bool preload_expected() {
  auto p = std::getenv("LD_PRELOAD");
  return p != nullptr && std::strstr(p, "fiu_posix_preload") != nullptr;
}

pb::LogEntry entry(uint64_t index, uint64_t term, std::string data) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data(std::move(data));
  return e;
}

// A value of `size` bytes that differs with `index`, so a misplaced entry shows.
std::string value(uint64_t index, size_t size) {
  std::string v(size, '\0');
  for (size_t i = 0; i < size; ++i)
    v[i] = static_cast<char>('a' + (index * 7 + i) % 26);
  return v;
}

pb::HardState hard_state(uint64_t term, const std::string& vote) {
  pb::HardState hs;
  hs.set_term(term);
  hs.set_voted_for(vote);
  return hs;
}

durable_options options(const std::string& dir, uint64_t segment_bytes = 64ull << 20) {
  durable_options o;
  o.dir = dir;
  o.node_id = "n1";
  o.cluster_id = "c1";
  o.segment_bytes = segment_bytes;
  o.logger_name = "disk-fault-test";
  return o;
}

// Writes one batch of entries; on success they join `acked`.
void write_entries(durable_storage& s, std::vector<pb::LogEntry> entries,
                   std::vector<pb::LogEntry>& acked,
                   std::optional<pb::HardState> hs = std::nullopt) {
  persist_batch b;
  b.hard_state = std::move(hs);
  b.entries = entries;
  std::vector<persist_batch> group;
  group.push_back(std::move(b));
  s.write(std::move(group));
  acked.insert(acked.end(), entries.begin(), entries.end());
}

// Every acknowledged entry is in `log`, intact and in place; at most `extra` more follow
// (a failed write is indefinite: it may have reached the disk anyway).
void expect_acked_prefix(const std::vector<pb::LogEntry>& log,
                         const std::vector<pb::LogEntry>& acked, size_t extra) {
  ASSERT_GE(log.size(), acked.size()) << "acknowledged entries are missing";
  EXPECT_LE(log.size(), acked.size() + extra);
  for (size_t i = 0; i < acked.size(); ++i)
    ASSERT_EQ(log[i].SerializeAsString(), acked[i].SerializeAsString())
        << "entry " << i + 1 << " differs";
}

bool has_code(const caf::error& e, errc code) {
  return e.category() == error_category && e.code() == static_cast<uint8_t>(code);
}

// -- fixtures ------------------------------------------------------------------------------

// Tests that inject fsync failures: they need the preload.
class SyncFault : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(fiu_init(0), 0);
    if (preload_active())
      return;
    if (preload_expected())
      FAIL() << "LD_PRELOAD names fiu_posix_preload.so, but a failpoint does not make "
                "fdatasync fail";
    GTEST_SKIP() << "libfiu's POSIX preload is not active: run through ctest, or as "
                    "`fiu-run -x cafraft-disk-fault-tests`";
  }
};

// Tests on a 1 MiB tmpfs: they need root.
class FullDisk : public ::testing::Test {
protected:
  void SetUp() override {
    if (!fs_.mounted())
      GTEST_SKIP() << fs_.error();
  }
  small_tmpfs fs_{"1m"};
};

// A single-member node on real files under the test scheduler.
class single_node {
public:
  explicit single_node(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  ~single_node() {
    for (auto& n : spawned_)
      caf::anon_send_exit(n, caf::exit_reason::kill);
    d.run();
    sys.clock().cancel_all();
    d.run();
  }
  single_node(const single_node&) = delete;
  single_node& operator=(const single_node&) = delete;

  caf::expected<caf::actor> start() {
    node_config nc;
    nc.id = "n1";
    nc.members = {member{"n1", "local/n1"}};
    nc.data_dir = data_dir_;
    nc.cluster_id = "c1";
    nc.seed = 42;
    nc.detached_storage = false; // the test scheduler runs everything
    nc.logger_name = "test";
    auto n = spawn_node(sys, std::move(nc));
    if (n)
      spawned_.push_back(*n);
    return n;
  }

  template <class Resp, class Req>
  std::shared_ptr<outcome<Resp>> ask(const caf::actor& target, Req req) {
    return ask_actor<Resp>(sys, target, std::move(req));
  }

  template <class Resp, class Req> caf::expected<Resp> call(const caf::actor& target, Req req) {
    auto o = ask<Resp>(target, std::move(req));
    d.run_until([&] { return o->done; }, 2000ms);
    if (!o->done)
      return caf::make_error(caf::sec::request_timeout);
    return o->value;
  }

  bool wait_leader(const caf::actor& n) {
    return d.run_until(
        [&] {
          auto st = ask<pb::NodeStatus>(n, status_atom::value);
          d.run();
          return st->done && st->value && st->value->role() == "leader";
        },
        3000ms);
  }

  struct down_slot {
    bool done = false;
    caf::error reason;
  };

  // Fills when `target` terminates, with its exit reason.
  std::shared_ptr<down_slot> watch(const caf::actor& target) {
    auto out = std::make_shared<down_slot>();
    // Held here: an actor nobody references ends (unreachable) before the news arrives.
    spawned_.push_back(sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->monitor(target);
      self->set_down_handler([=](caf::down_msg& m) {
        out->done = true;
        out->reason = m.reason;
        self->quit();
      });
      return {[](int) {}};
    }));
    return out;
  }

  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};

private:
  std::string data_dir_;
  std::vector<caf::actor> spawned_; // nodes and watchers
};

// -- fsync failures ------------------------------------------------------------------------

TEST_F(SyncFault, FailedFdatasyncStopsStorageForGood) {
  temp_dir dir;
  auto opts = options(dir.path() + "/n1");
  std::vector<pb::LogEntry> acked;
  {
    durable_storage s{opts};
    s.load();
    write_entries(s, {entry(1, 1, "a"), entry(2, 1, "b")}, acked, hard_state(1, "n1"));
    write_entries(s, {entry(3, 1, "c")}, acked);
    {
      sync_failure fail;
      try {
        write_entries(s, {entry(4, 1, "d")}, acked);
        FAIL() << "the write succeeded although fdatasync failed";
      } catch (const storage_full& e) {
        FAIL() << "an EIO is not a full disk: " << e.what();
      } catch (const storage_error& e) {
        EXPECT_NE(std::string{e.what()}.find("fdatasync"), std::string::npos) << e.what();
        EXPECT_NE(std::string{e.what()}.find(errno_text(EIO)), std::string::npos) << e.what();
      }
      EXPECT_EQ(sync_failure::fdatasync_calls, 1);
      // Never retried: the next writes fail without another fdatasync, a hard state too.
      EXPECT_THROW(write_entries(s, {entry(4, 1, "d")}, acked), storage_error);
      persist_batch hs_only;
      hs_only.hard_state = hard_state(2, "n1");
      std::vector<persist_batch> group;
      group.push_back(std::move(hs_only));
      EXPECT_THROW(s.write(std::move(group)), storage_error);
      EXPECT_EQ(sync_failure::fdatasync_calls, 1) << "a failed fdatasync was retried";
      EXPECT_EQ(sync_failure::fsync_calls, 0);
    }
    // Not even once the disk works again.
    EXPECT_THROW(write_entries(s, {entry(4, 1, "d")}, acked), storage_error);
    EXPECT_EQ(acked.size(), 3u);
  }
  durable_storage s{opts};
  auto rec = s.load();
  EXPECT_EQ(rec.hard_state.term(), 1u);
  EXPECT_EQ(rec.hard_state.voted_for(), "n1");
  expect_acked_prefix(rec.log, acked, 1);
}

TEST_F(SyncFault, FailedDirectoryFsyncAtSegmentRotationStopsStorage) {
  temp_dir dir;
  auto opts = options(dir.path() + "/n1", 4096);
  std::vector<pb::LogEntry> acked;
  {
    durable_storage s{opts};
    s.load();
    write_entries(s, {entry(1, 1, value(1, 3000))}, acked, hard_state(1, "n1"));
    sync_failure fail;
    fiu_disable(fdatasync_point); // only the directory's fsync fails
    try {
      write_entries(s, {entry(2, 1, value(2, 3000))}, acked); // begins segment 2
      FAIL() << "the write succeeded although fsync of the directory failed";
    } catch (const storage_full& e) {
      FAIL() << "an EIO is not a full disk: " << e.what();
    } catch (const storage_error& e) {
      EXPECT_NE(std::string{e.what()}.find("fsync " + opts.dir), std::string::npos) << e.what();
    }
    EXPECT_EQ(sync_failure::fsync_calls, 1);
    fail.disable();
    EXPECT_THROW(write_entries(s, {entry(2, 1, value(2, 3000))}, acked), storage_error);
  }
  durable_storage s{opts};
  expect_acked_prefix(s.load().log, acked, 1);
}

TEST_F(SyncFault, NodeStopsOnFailedFdatasyncAndRestartsWithWhatItAcknowledged) {
  temp_dir dir;
  single_node t{dir.path() + "/n1"};
  {
    auto n = t.start();
    ASSERT_TRUE(n) << render(n.error());
    ASSERT_TRUE(t.wait_leader(*n));
    auto w = t.call<pb::WriteResponse>(*n, put("a", "1"));
    ASSERT_TRUE(w) << render(w.error());
    auto down = t.watch(*n);
    sync_failure fail;
    auto o = t.ask<pb::WriteResponse>(*n, put("b", "2"));
    t.d.run_until([&] { return o->done && down->done; }, 2000ms);
    ASSERT_TRUE(o->done) << "the client got no answer";
    EXPECT_FALSE(o->value) << "a write was acknowledged although fdatasync failed (index "
                           << o->value->index() << ")";
    ASSERT_TRUE(down->done) << "the node still runs after its storage failed";
    EXPECT_TRUE(has_code(down->reason, errc::storage_failed)) << render(down->reason);
    EXPECT_NE(render(down->reason).find("fdatasync"), std::string::npos) << render(down->reason);
    EXPECT_GE(sync_failure::fdatasync_calls, 1);
  }
  // The disk works again: the node starts from the same directory with what it acknowledged.
  auto n = t.start();
  ASSERT_TRUE(n) << render(n.error());
  ASSERT_TRUE(t.wait_leader(*n));
  auto r = t.call<pb::GetResponse>(*n, get("a"));
  ASSERT_TRUE(r) << render(r.error());
  EXPECT_TRUE(r->found());
  EXPECT_EQ(r->value(), "1");
  auto w = t.call<pb::WriteResponse>(*n, put("c", "3"));
  EXPECT_TRUE(w) << render(w.error());
}

// -- a full disk ---------------------------------------------------------------------------

class FullDiskSegments : public FullDisk, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(FullDiskSegments, StorageFullKeepsEveryAcknowledgedEntry) {
  auto root = fs_.path();
  auto filler = root + "/filler"; // removed later to free space
  {
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << errno_text(errno);
    std::string bytes(64 * 1024, 'x');
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  auto opts = options(root + "/n1", GetParam());
  std::vector<pb::LogEntry> acked;
  std::string full_error;
  {
    durable_storage s{opts};
    s.load();
    write_entries(s, {entry(1, 1, value(1, 4000))}, acked, hard_state(1, "n1"));
    for (uint64_t i = 2; i < 1000 && full_error.empty(); ++i) {
      try {
        write_entries(s, {entry(i, 1, value(i, 4000))}, acked);
      } catch (const storage_full& e) {
        full_error = e.what();
      } catch (const storage_error& e) {
        FAIL() << "a full disk was not reported as storage_full: " << e.what();
      }
    }
    ASSERT_FALSE(full_error.empty()) << "1000 entries of 4000 bytes fit in a 1 MiB tmpfs";
    EXPECT_GT(acked.size(), 100u) << "the disk was full too early";
    EXPECT_NE(full_error.find("the disk is full"), std::string::npos) << full_error;
    EXPECT_NE(full_error.find(errno_text(ENOSPC)), std::string::npos) << full_error;
    EXPECT_THROW(write_entries(s, {entry(acked.size() + 1, 1, "x")}, acked), storage_error);
  }
  // Loading works on the full disk: it reads, and only cuts or removes what a failed write
  // left at the end.
  {
    durable_storage s{opts};
    recovered_state rec;
    ASSERT_NO_THROW(rec = s.load());
    EXPECT_EQ(rec.hard_state.term(), 1u);
    EXPECT_EQ(rec.hard_state.voted_for(), "n1");
    expect_acked_prefix(rec.log, acked, 1);
  }
  // With space again, the log continues where it ended.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  uint64_t next = 0;
  {
    durable_storage s{opts};
    auto rec = s.load();
    expect_acked_prefix(rec.log, acked, 1);
    // The failed write may have reached the disk whole: then it is in the log from now on.
    acked.assign(rec.log.begin(), rec.log.end());
    next = rec.log.size() + 1;
    write_entries(s, {entry(next, 2, "after")}, acked, hard_state(2, "n1"));
  }
  durable_storage s{opts};
  auto rec = s.load();
  EXPECT_EQ(rec.hard_state.term(), 2u);
  expect_acked_prefix(rec.log, acked, 0);
  EXPECT_EQ(rec.log.size(), next);
}

INSTANTIATE_TEST_SUITE_P(Segments, FullDiskSegments,
                         ::testing::Values(64ull << 20, 64ull << 10, 4096ull),
                         [](const ::testing::TestParamInfo<uint64_t>& p) {
                           return "segment_bytes_" + std::to_string(p.param);
                         });

// A single node on the 1 MiB tmpfs: it leads and has written "a" when the disk fills up, and
// then a client asks it to put 16 KiB more.
class FullDiskNode : public FullDisk {
protected:
  void put_on_full_disk() {
    auto n = t.start();
    ASSERT_TRUE(n) << render(n.error());
    node = *n;
    ASSERT_TRUE(t.wait_leader(node));
    auto w = t.call<pb::WriteResponse>(node, put("a", "1"));
    ASSERT_TRUE(w) << render(w.error());
    ASSERT_EQ(fill_up(filler), ENOSPC);
    down = t.watch(node);
    answer = t.ask<pb::WriteResponse>(node, put("b", value(2, 16 * 1024)));
    t.d.run_until([&] { return answer->done && down->done; }, 2000ms);
    ASSERT_TRUE(answer->done) << "the client got no answer";
    ASSERT_FALSE(answer->value) << "a write was acknowledged on a full disk (index "
                                << answer->value->index() << ")";
  }

  std::string filler = fs_.path() + "/filler";
  single_node t{fs_.path() + "/n1"}; // stopped, its files closed, before the tmpfs goes
  caf::actor node;
  std::shared_ptr<single_node::down_slot> down;
  std::shared_ptr<outcome<pb::WriteResponse>> answer;
};

TEST_F(FullDiskNode, PutFailsAndNodeStopsWithDiskFullThenRestartsWithWhatItAcknowledged) {
  put_on_full_disk();
  if (HasFatalFailure())
    return;
  ASSERT_TRUE(down->done) << "the node still runs on a full disk";
  EXPECT_TRUE(has_code(down->reason, errc::disk_full)) << render(down->reason);
  // Space again: the node starts from the same directory with what it acknowledged.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  auto n = t.start();
  ASSERT_TRUE(n) << render(n.error());
  ASSERT_TRUE(t.wait_leader(*n));
  auto r = t.call<pb::GetResponse>(*n, get("a"));
  ASSERT_TRUE(r) << render(r.error());
  EXPECT_TRUE(r->found());
  EXPECT_EQ(r->value(), "1");
}

TEST_F(FullDiskNode, ClientGetsDiskFullNotATimeout) {
  put_on_full_disk();
  if (HasFatalFailure())
    return;
  EXPECT_TRUE(has_code(answer->value.error(), errc::disk_full))
      << "the client got " << render(answer->value.error())
      << "; a write pending when storage fails must be answered with the storage's error";
}

} // namespace
} // namespace cafraft::test
