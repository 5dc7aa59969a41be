// Backup, restore and recovery from a lost majority between real processes
// (docs/deployment.md, "Backup and restore" and "When members are lost"): cafraftctl snapshot
// save from a running cluster, snapshot status, cafraft-node --restore and --force-new-cluster,
// and the bad inputs that must be refused without touching anything.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <cafraft/runtime/features.hpp>

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

// Five nodes lose three for good. One survivor restarts as the only voter of a new
// configuration with everything it had; the other survivor (its data wiped) and two fresh
// nodes join it, and the cluster takes writes again.
TEST_F(ProcessCluster, ASurvivorOfALostMajorityForcesANewClusterThatOthersJoin) {
  phase_clock phase;
  std::vector<std::string> ids{"n1", "n2", "n3", "n4", "n5"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure", "--cluster-id", "prod"});
  ASSERT_FALSE(leader(ids).empty()) << "no leader: see " << dir;
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(ctl(ids, {"put", "k" + std::to_string(i), "v" + std::to_string(i)}).code, 0);
  // Every member holds every write before the disaster (member list: no lag).
  bool caught_up = false;
  for (int i = 0; i < 100 && !caught_up; ++i) {
    auto l = ctl(ids, {"-w", "json", "member", "list"});
    size_t zero = 0;
    for (auto at = l.out.find("\"lag\": \"0\""); at != std::string::npos;
         at = l.out.find("\"lag\": \"0\"", at + 1))
      ++zero;
    caught_up = l.code == 0 && zero == ids.size();
    if (!caught_up)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(caught_up) << ctl(ids, {"member", "list"}).out;
  phase("30 writes on 5 nodes");
  auto cur = leader(ids);
  std::vector<std::string> lost{cur}, survivors;
  for (auto& id : ids)
    if (id != cur && lost.size() < 3)
      lost.push_back(id);
    else if (id != cur)
      survivors.push_back(id);
  ASSERT_EQ(survivors.size(), 2u);
  for (auto& id : lost) {
    ::kill(pids[id], SIGKILL);
    wait_exit(pids[id]);
    pids[id] = -1;
  }
  // Without a majority nothing is written.
  auto stuck = ctl(survivors, {"--timeout-ms", "1500", "put", "stuck", "x"});
  EXPECT_NE(stuck.code, 0) << "a write without a majority";
  phase("three of five lost for good");

  // The first survivor: --force-new-cluster from its own data.
  auto s1 = survivors[0], s2 = survivors[1];
  ::kill(pids[s1], SIGTERM);
  wait_exit(pids[s1]);
  start_node(s1, {"--insecure", "--cluster-id", "prod", "--force-new-cluster"});
  std::vector<std::string> alone{s1};
  ASSERT_FALSE(leader(alone).empty()) << "the survivor does not lead alone: see " << dir;
  for (int i = 0; i < 30; ++i) {
    auto got = ctl(alone, {"get", "k" + std::to_string(i)});
    EXPECT_EQ(got.out, "v" + std::to_string(i) + "\n") << i;
  }
  EXPECT_EQ(ctl(alone, {"put", "after", "recovery"}).code, 0);
  phase("the survivor forced a new cluster");

  // The other survivor, its data wiped, and two fresh nodes join it.
  ::kill(pids[s2], SIGTERM);
  wait_exit(pids[s2]);
  pids[s2] = -1;
  fs::remove_all(dir + "/" + s2);
  std::vector<std::string> all{s1};
  for (auto& id : {s2, std::string{"f1"}, std::string{"f2"}}) {
    if (!ports.count(id))
      ports[id] = free_port();
    start_node(id, {"--join", endpoints(all), "--insecure", "--cluster-id", "prod"});
    all.push_back(id);
    bool in = false;
    for (int i = 0; i < 100 && !in; ++i) {
      auto l = ctl(all, {"member", "list"});
      in = l.code == 0 && l.out.find(id) != std::string::npos &&
           l.out.find("learner") == std::string::npos;
      if (!in)
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(in) << id << " did not join: " << ctl(all, {"member", "list"}).out;
  }
  phase("three nodes joined");
  EXPECT_EQ(ctl(all, {"put", "grown", "again"}).code, 0);
  auto list = ctl(all, {"member", "list"});
  for (auto& id : lost)
    EXPECT_EQ(list.out.find(id + " "), std::string::npos) << id << " is gone: " << list.out;
  // The new members hold every write: none lags behind the leader's commit.
  size_t zero = 0;
  for (int i = 0; i < 100 && zero != all.size(); ++i) {
    auto l = ctl(all, {"-w", "json", "member", "list"});
    zero = 0;
    for (auto at = l.out.find("\"lag\": \"0\""); at != std::string::npos;
         at = l.out.find("\"lag\": \"0\"", at + 1))
      ++zero;
    if (zero != all.size())
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(zero, all.size()) << ctl(all, {"member", "list"}).out;
  auto k0 = ctl(all, {"get", "k0"});
  EXPECT_EQ(k0.out, "v0\n");
}

// A rolling upgrade (docs/deployment.md, "Rolling upgrades"): n3 stands for a node of the older
// binary (--feature-level 1). The cluster serves, but the newer level is not put in force
// while n3 announces the older one; once n3 is restarted on the new binary, every node has it
// in force. The levels are read from /v1/status.
TEST_F(ProcessCluster, AMixedClusterHoldsTheFeatureGateUntilTheLastNodeUpgrades) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  std::map<std::string, uint16_t> admin;
  auto args = [&](const std::string& id, bool old) {
    if (!admin.count(id))
      admin[id] = free_port();
    std::vector<std::string> a{"--initial-cluster", initial, "--insecure", "--admin",
                               "127.0.0.1:" + std::to_string(admin[id])};
    if (old)
      a.insert(a.end(), {"--feature-level", "1"});
    return a;
  };
  for (auto& id : ids)
    start_node(id, args(id, id == "n3"));
  ASSERT_FALSE(leader(ids).empty());
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(ctl(ids, {"put", "k" + std::to_string(i), "v"}).code, 0);
  auto levels = [&](const std::string& id) {
    httplib::Client http{"127.0.0.1", admin[id]};
    http.set_connection_timeout(1);
    auto r = http.Get("/v1/status");
    auto j = r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json{};
    if (j.is_discarded() || !j.contains("cluster_level"))
      return std::make_pair(0u, 0u);
    return std::make_pair(j["cluster_level"].get<unsigned>(), j["feature_level"].get<unsigned>());
  };
  std::this_thread::sleep_for(1s); // heartbeats: every member announced its level
  for (auto& id : ids) {
    auto [in_force, own] = levels(id);
    EXPECT_EQ(in_force, 1u) << id << ": the gate opened while n3 is older";
    EXPECT_EQ(own, id == "n3" ? 1u : features::current) << id;
  }
  // n3 is upgraded: stopped, and started again on the new binary.
  ::kill(pids["n3"], SIGTERM);
  EXPECT_EQ(wait_exit(pids["n3"]), 0);
  // (A fresh admin port: the old one may be some connection's ephemeral port by now.)
  admin.erase("n3");
  start_node("n3", args("n3", false));
  bool open = false;
  for (int i = 0; i < 100 && !open; ++i) {
    open = true;
    for (auto& id : ids)
      open = open && levels(id).first == features::current;
    if (!open)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(open) << "the gate never opened after the last node upgraded";
  EXPECT_EQ(ctl(ids, {"put", "after", "v"}).code, 0);
  auto log = [&](const std::string& id) {
    std::ifstream in{dir + "/" + id + ".log"};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  bool logged = false;
  for (auto& id : ids)
    logged = logged || log(id).find("every member supports feature level " +
                                    std::to_string(features::current)) != std::string::npos;
  EXPECT_TRUE(logged) << "no leader logged that it put level " << features::current << " in force";
}

} // namespace
} // namespace cafraft::test
