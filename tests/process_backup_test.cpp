// Backup and restore between real processes (docs/deployment.md, "Backup and restore"):
// cafraftctl snapshot save from a running cluster, snapshot status, cafraft-node --restore, and
// the bad inputs that must be refused without touching anything.
#include <fstream>
#include <sstream>

#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spill(const std::string& path, const std::string& bytes) {
  std::ofstream{path, std::ios::binary | std::ios::trunc} << bytes;
}

TEST_F(ProcessCluster, ABackupRestoresIntoANewClusterAndBadBackupsTouchNothing) {
  phase_clock phase;
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure", "--cluster-id", "prod"});
  ASSERT_FALSE(leader(ids).empty()) << "no leader: see " << dir;
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(ctl(ids, {"put", "k" + std::to_string(i), "v" + std::to_string(i)}).code, 0);
  phase("20 writes");

  auto file = dir + "/backup.cfb";
  auto save = ctl(ids, {"snapshot", "save", file});
  ASSERT_EQ(save.code, 0) << save.out;
  EXPECT_NE(save.out.find("saved snapshot at index"), std::string::npos) << save.out;
  auto status = run({bin_dir + "/cafraftctl", "snapshot", "status", file}, dir);
  EXPECT_EQ(status.code, 0) << status.out;
  EXPECT_NE(status.out.find("cluster:     prod"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("members:     n1@"), std::string::npos) << status.out;
  phase("saved and checked");
  // A write after the backup is not in it.
  ASSERT_EQ(ctl(ids, {"put", "after", "backup"}).code, 0);

  // Restored into an empty directory: a new cluster of one node with the backup's state.
  ports["r1"] = free_port();
  start_node("r1", {"--restore", file, "--insecure"});
  std::vector<std::string> restored{"r1"};
  ASSERT_FALSE(leader(restored).empty()) << "the restored node does not lead: see " << dir;
  for (int i = 0; i < 20; ++i) {
    auto got = ctl(restored, {"get", "k" + std::to_string(i)});
    EXPECT_EQ(got.code, 0) << i;
    EXPECT_EQ(got.out, "v" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(ctl(restored, {"get", "after"}).code, 2) << "written after the backup";
  EXPECT_EQ(ctl(restored, {"put", "new", "cluster"}).code, 0) << "it takes writes";
  auto members = ctl(restored, {"member", "list"});
  EXPECT_EQ(members.out.find("n1"), std::string::npos) << "the old members are gone";
  phase("restored into a new cluster");

  // Bad input: each is refused with its reason, and touches nothing.
  auto bytes = slurp(file);
  auto refused = [&](const std::string& what, const std::string& backup, const std::string& target,
                     const std::string& expect) {
    auto st = run({bin_dir + "/cafraftctl", "snapshot", "status", backup}, dir);
    if (target.empty()) {
      EXPECT_EQ(st.code, 2) << what << ": " << st.out;
      EXPECT_NE(st.out.find(expect), std::string::npos) << what << ": " << st.out;
    }
    auto data = dir + "/" + (target.empty() ? "fresh" : target);
    bool existed = fs::exists(data);
    auto before = existed ? fs::last_write_time(data) : fs::file_time_type{};
    auto r = run({bin_dir + "/cafraft-node", "--id", "x1", "--data-dir", data, "--listen",
                  "127.0.0.1:" + std::to_string(free_port()), "--insecure", "--restore", backup},
                 dir);
    EXPECT_EQ(r.code, 1) << what << ": " << r.out;
    EXPECT_NE(r.out.find(expect), std::string::npos) << what << ": " << r.out;
    EXPECT_EQ(fs::exists(data), existed) << what;
    if (existed) {
      EXPECT_EQ(fs::last_write_time(data), before) << what;
    }
  };
  spill(dir + "/cut.cfb", bytes.substr(0, bytes.size() - 100));
  refused("a truncated backup", dir + "/cut.cfb", "", "cut short");
  auto damaged = bytes;
  damaged[damaged.size() - 50] ^= 0x10;
  spill(dir + "/damaged.cfb", damaged);
  refused("a damaged backup", dir + "/damaged.cfb", "", "CRC32C");
  refused("a file of another format", dir + "/n1.log", "", "not a cafraft backup");
  refused("a missing file", dir + "/none.cfb", "", "cannot open");
  refused("a data directory with data", file, "n2", "holds data");
  phase("bad backups refused");
}

} // namespace
} // namespace cafraft::test
