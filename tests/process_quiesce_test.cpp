// Quiescence between cafraft-node processes (docs/membership.md, "Quiescence"): an idle cluster
// stops heartbeating and uses next to no CPU; when its leader is killed -9 while it sleeps,
// the others notice the closed connections (there is no heartbeat to miss), elect and go on.
#include <fstream>
#include <sstream>

#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

/// CPU time (user + system) the process has used, in clock ticks.
uint64_t cpu_ticks(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat{std::istreambuf_iterator<char>{in}, {}};
  std::istringstream fields{stat.substr(stat.rfind(')') + 2)};
  std::string f;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) { // fields 14 and 15 of proc(5)
    if (i == 14)
      utime = std::stoull(f);
    if (i == 15)
      stime = std::stoull(f);
  }
  return utime + stime;
}

TEST_F(ProcessCluster, AnIdleClusterQuiescesAndElectsWhenItsSleepingLeaderIsKilled) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure", "--quiesce-after-ms", "300"});
  auto first = leader(ids);
  ASSERT_FALSE(first.empty()) << "no leader: see " << dir;
  ASSERT_EQ(ctl(ids, {"put", "k", "v1"}).code, 0);
  process_config cfg;
  caf::actor_system sys{cfg};
  cafraft::remote_client client{sys, addresses(ids), cafraft::tls_files{}, 5s};
  auto all_quiesced = [&](const std::vector<std::string>& which) {
    for (auto& id : which) {
      auto st = client.ask<pb::NodeStatus>(address(id), status_atom::value, 1000ms);
      if (!st || !st->quiesced())
        return false;
    }
    return true;
  };
  ASSERT_TRUE(eventually(10s, [&] { return all_quiesced(ids); }))
      << "the idle cluster did not quiesce (see " << dir << ")";
  // Five idle seconds: what the three processes use (docs/performance.md; not asserted).
  uint64_t before = 0, after = 0;
  for (auto& id : ids)
    before += cpu_ticks(pids[id]);
  std::this_thread::sleep_for(5s);
  for (auto& id : ids)
    after += cpu_ticks(pids[id]);
  std::printf("[process] three quiesced nodes used %.2f%% of a core while idle for 5 s\n",
              100.0 * static_cast<double>(after - before) /
                  static_cast<double>(::sysconf(_SC_CLK_TCK)) / 5.0);
  // The status asks above woke no one: a status is not a client request.
  EXPECT_TRUE(all_quiesced(ids));

  auto killed_at = steady::now();
  ::kill(pids[first], SIGKILL);
  EXPECT_EQ(wait_exit(pids[first]), 128 + SIGKILL);
  pids[first] = 0;
  std::vector<std::string> rest;
  for (auto& id : ids)
    if (id != first)
      rest.push_back(id);
  auto next = leader(rest, first, 15s);
  ASSERT_FALSE(next.empty()) << "the sleeping followers never replaced their killed leader";
  std::printf("[process] a new leader %lld ms after the sleeping leader was killed\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - killed_at)
                      .count()));
  EXPECT_EQ(ctl(rest, {"put", "k", "v2"}).code, 0);
  auto got = ctl(rest, {"get", "k"});
  EXPECT_EQ(got.out, "v2\n");
}

} // namespace
} // namespace cafraft::test
