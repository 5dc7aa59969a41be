// Client sessions and reads over the network, between cafraft-node processes: a client's writes
// in a session apply once through a kill -9 of the leader, and a stale read on a follower with
// the index a write returned sees the write (docs/sessions.md).
#include <atomic>
#include <thread>

#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

TEST_F(ProcessCluster, WritesInASessionApplyOnceThroughALeaderKill) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure", "--lease-reads"});
  auto first = leader(ids);
  ASSERT_FALSE(first.empty()) << "no leader: see " << dir;
  process_config cfg;
  caf::actor_system sys{cfg};
  cafraft::remote_client client{sys, addresses(ids), cafraft::tls_files{}, 15s};
  // Sessions open once the cluster has their feature level in force (every member announced
  // it to the leader).
  ASSERT_TRUE(eventually(10s, [&] {
    for (auto& id : ids) {
      auto st = client.ask<pb::NodeStatus>(address(id), status_atom::value, 1000ms);
      if (!st || st->cluster_level() < 3)
        return false;
    }
    return true;
  })) << "the sessions' feature level was not put in force";

  // A chain of compare-and-swaps: write i expects the value write i-1 left. Should an attempt
  // that was applied be applied again on its retry, its compare would fail: every cas succeeds
  // only if each applies exactly once.
  constexpr int writes = 400;
  std::atomic<int> done{0};
  std::thread killer{[&] {
    while (done.load() < 150)
      std::this_thread::sleep_for(1ms);
    ::kill(pids[first], SIGKILL); // mid-write, most likely: the client cannot know its fate
  }};
  uint64_t last_index = 0;
  for (int i = 1; i <= writes; ++i) {
    pb::CasRequest req;
    req.set_key("chain");
    req.set_value(std::to_string(i));
    if (i == 1)
      req.set_expect_absent(true);
    else
      req.set_expected(std::to_string(i - 1));
    bool reached = false;
    auto w = client.write(req, reached);
    if (!w) {
      killer.join();
      FAIL() << "cas " << i << ": " << render(w.error()) << " (see " << dir << ")";
    }
    pb::KvResult res;
    ASSERT_TRUE(res.ParseFromString(w->result()));
    if (res.compare_failed()) {
      killer.join();
      FAIL() << "cas " << i << " found \"" << res.previous() << "\": a write applied twice";
    }
    last_index = w->index();
    done = i;
  }
  killer.join();
  EXPECT_EQ(wait_exit(pids[first]), 128 + SIGKILL);
  pids[first] = 0;
  std::printf("[process] %d compare-and-swaps in one session through a leader kill: %llu sent "
              "again, %llu answered from the session table\n",
              writes, static_cast<unsigned long long>(client.session().retries),
              static_cast<unsigned long long>(client.session().duplicates));

  // Read-your-writes on a follower: a stale read with the write's index waits until the
  // follower applied it.
  auto now = leader(ids, first);
  ASSERT_FALSE(now.empty());
  pb::PutRequest put;
  put.set_key("ryw");
  put.set_value("seen");
  bool reached = false;
  auto w = client.write(put, reached);
  ASSERT_TRUE(w) << render(w.error());
  for (auto& id : ids) {
    if (id == first || id == now)
      continue;
    pb::GetRequest get;
    get.set_key("ryw");
    get.set_policy(pb::READ_STALE);
    get.set_min_index(w->index());
    auto r = client.ask<pb::GetResponse>(address(id), get, 5000ms);
    ASSERT_TRUE(r) << render(r.error());
    EXPECT_TRUE(r->found()) << id;
    EXPECT_EQ(r->value(), "seen") << id;
    EXPECT_GE(r->applied_index(), w->index()) << id;
    // A follower read there: the leader's read index, then the follower's own state.
    get.set_policy(pb::READ_FOLLOWER);
    get.set_min_index(0);
    r = client.ask<pb::GetResponse>(address(id), get, 5000ms);
    ASSERT_TRUE(r) << render(r.error());
    EXPECT_EQ(r->value(), "seen") << id;
  }
  // A lease read on the leader.
  pb::GetRequest lease;
  lease.set_key("ryw");
  lease.set_policy(pb::READ_LEASE);
  auto l = client.ask<pb::GetResponse>(address(now), lease, 5000ms);
  ASSERT_TRUE(l) << render(l.error());
  EXPECT_EQ(l->value(), "seen");
  // cafraftctl: a put in its own session, a stale read with --min-index, prefix and range reads.
  for (auto k : {"p/a", "p/b", "p/c", "q"})
    ASSERT_EQ(ctl(ids, {"put", k, std::string{"v-"} + k}).code, 0);
  auto range = ctl(ids, {"get", "--prefix", "p/"});
  EXPECT_EQ(range.code, 0) << range.out;
  EXPECT_EQ(range.out, "p/a\nv-p/a\np/b\nv-p/b\np/c\nv-p/c\n");
  auto limited = ctl(ids, {"-w", "json", "get", "p/b", "q", "--limit", "1"});
  EXPECT_EQ(limited.code, 0) << limited.out;
  EXPECT_NE(limited.out.find("\"more\": true"), std::string::npos) << limited.out;
  EXPECT_NE(limited.out.find("p/b"), std::string::npos) << limited.out;
  EXPECT_EQ(limited.out.find("p/c"), std::string::npos) << limited.out;
  auto stale =
      ctl(ids, {"get", "ryw", "--read", "stale", "--min-index", std::to_string(w->index())});
  EXPECT_EQ(stale.code, 0) << stale.out;
  EXPECT_EQ(stale.out, "seen\n");
  for (auto policy : {"follower", "lease", "linearizable"}) {
    auto g = ctl(ids, {"get", "ryw", "--read", policy});
    EXPECT_EQ(g.code, 0) << policy << ": " << g.out;
    EXPECT_EQ(g.out, "seen\n") << policy;
  }
  EXPECT_EQ(ctl(ids, {"get", "ryw", "--read", "sometimes"}).code, 1) << "a bad policy is usage";

  // Watches: the history of a prefix from index 1 (through the first endpoint that answers:
  // the killed one does not), and live changes to a watcher that waits for them.
  auto history = ctl(ids, {"watch", "p/", "--prefix", "--from", "1", "--count", "3"});
  EXPECT_EQ(history.code, 0) << history.out;
  std::istringstream lines{history.out};
  std::vector<std::string> keys;
  for (std::string line; std::getline(lines, line);)
    if (line.find(" PUT ") != std::string::npos)
      keys.push_back(line.substr(line.find(" PUT ") + 5));
  EXPECT_EQ(keys, (std::vector<std::string>{"p/a v-p/a", "p/b v-p/b", "p/c v-p/c"})) << history.out;
  auto live_log = dir + "/watch.log";
  auto watcher = start({bin_dir + "/cafraftctl", "--endpoints", endpoints(ids), "-w", "json",
                        "watch", "live", "--count", "2"},
                       live_log);
  std::this_thread::sleep_for(1s); // the watch starts
  ASSERT_EQ(ctl(ids, {"put", "live", "1"}).code, 0);
  ASSERT_EQ(ctl(ids, {"del", "live"}).code, 0);
  EXPECT_EQ(wait_exit(watcher, 10s), 0);
  std::ifstream in{live_log};
  std::string live{std::istreambuf_iterator<char>(in), {}};
  EXPECT_NE(live.find("\"key\":\"live\",\"value\":\"1\""), std::string::npos) << live;
  EXPECT_NE(live.find("\"key\":\"live\",\"deleted\":true"), std::string::npos) << live;
  (void)last_index;
}

} // namespace
} // namespace cafraft::test
