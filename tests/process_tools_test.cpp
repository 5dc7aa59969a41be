// The tools against real cafraft-node processes (ctest label "process"): the admin endpoints,
// the inspection console (one-shot and interactive, on a pseudo-terminal), cafraft-bench and
// cafraft-floor.
#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

TEST_F(ProcessCluster, AdminEndpointsServeMetricsAndHealth) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  auto admin = free_port();
  // n1 alone: alive, but with no leader it is not ready.
  start_node("n1", {"--initial-cluster", initial, "--insecure", "--admin",
                    "127.0.0.1:" + std::to_string(admin)});
  httplib::Client http{"127.0.0.1", admin};
  http.set_connection_timeout(1);
  int live = 0;
  for (int i = 0; i < 50 && live == 0; ++i) {
    if (auto r = http.Get("/livez"))
      live = r->status;
    else
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(live, 200) << "no admin endpoint";
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << "ready without a leader";
  for (auto id : {"n2", "n3"})
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  ASSERT_FALSE(leader(ids).empty());
  ASSERT_EQ(ctl(ids, {"put", "k", "v"}).code, 0);
  bool is_ready = false;
  for (int i = 0; i < 50 && !is_ready; ++i) {
    auto r = http.Get("/readyz");
    is_ready = r && r->status == 200;
    if (!is_ready)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(is_ready);
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(cafraft::check_prometheus_text(metrics->body), "") << metrics->body;
  for (auto name : {"cafraft_term{", "cafraft_commit_index{", "cafraft_applied_index{",
                    "cafraft_storage_write_seconds_bucket{", "cafraft_actor_mailbox_messages{",
                    "cafraft_actor_messages_handled_total{"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  auto status = http.Get("/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_NE(status->body.find("\"id\": \"n1\""), std::string::npos) << status->body;
  // Nothing that changes the cluster is served.
  auto post = http.Post("/v1/status", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);
}

TEST_F(ProcessCluster, ConsoleShowsActorsStateAndUnreachableNodes) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  auto lead = leader(ids);
  ASSERT_FALSE(lead.empty());
  ASSERT_EQ(ctl(ids, {"put", "k", "v"}).code, 0);
  auto console = [&](const std::string& cmds) {
    return run({bin_dir + "/cafraft-console", "--endpoints", endpoints(ids), "-c", cmds}, dir);
  };
  // The actor tree of every node, with its role.
  auto tree = console("actors");
  EXPECT_EQ(tree.code, 0) << tree.out;
  for (auto& id : ids) {
    EXPECT_NE(tree.out.find(id + " (node)"), std::string::npos) << tree.out;
    EXPECT_NE(tree.out.find(id + "/storage"), std::string::npos) << tree.out;
    EXPECT_NE(tree.out.find(id + (id == lead ? "/leader" : "/follower")), std::string::npos)
        << tree.out;
  }
  EXPECT_NE(tree.out.find(lead + "/peer-"), std::string::npos) << tree.out;
  // One actor's whole state, and two commands in one go.
  auto both = console("inspect " + lead + "/leader; inspect " + lead + "/storage");
  EXPECT_EQ(both.code, 0) << both.out;
  EXPECT_NE(both.out.find(lead + "/leader (leader)"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("commit_index"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("write_us_le_"), std::string::npos) << both.out;
  EXPECT_NE(both.out.find("segment_bytes"), std::string::npos) << both.out;
  auto log = console("log " + lead + " 50");
  EXPECT_EQ(log.code, 0) << log.out;
  EXPECT_NE(log.out.find(lead + " [term"), std::string::npos) << log.out;
  EXPECT_NE(log.out.find("became leader"), std::string::npos) << log.out;
  auto top = console("top rate");
  EXPECT_EQ(top.code, 0) << top.out;
  EXPECT_NE(top.out.find("MSG/S 10s"), std::string::npos) << top.out;
  EXPECT_EQ(console("top sideways").code, 1);
  EXPECT_EQ(console("nonsense").code, 1);
  EXPECT_EQ(console("inspect \"unterminated").code, 1);
  // The commands of cafraftctl, with its exit codes.
  auto kv = console("put color red; get color; cas color red blue; get color; del color");
  EXPECT_EQ(kv.code, 0) << kv.out;
  EXPECT_NE(kv.out.find("red\n"), std::string::npos) << kv.out;
  EXPECT_NE(kv.out.find("blue\n"), std::string::npos) << kv.out;
  auto failed_cas = console("cas color red green");
  EXPECT_EQ(failed_cas.code, 2) << failed_cas.out;
  EXPECT_NE(failed_cas.out.find("compare failed: key does not exist"), std::string::npos)
      << failed_cas.out;
  EXPECT_EQ(console("cas --absent color green; get color").code, 0);
  // Bytes that are not UTF-8 are replaced in JSON, not fatal.
  ASSERT_EQ(ctl(ids, {"put", "raw", "\xff\xfe"}).code, 0);
  auto raw = ctl(ids, {"-w", "json", "get", "raw"});
  EXPECT_EQ(raw.code, 0) << raw.out;
  EXPECT_NE(raw.out.find("\"value\""), std::string::npos) << raw.out;
  EXPECT_EQ(console("member frobnicate").code, 1);
  EXPECT_EQ(console("get").code, 1);
  auto help = console("help top");
  EXPECT_NE(help.out.find("top [mailbox|rate]"), std::string::npos) << help.out;
  // watch sees membership changes, and the leadership move when the leader is killed.
  auto watch_log = dir + "/watch.out";
  auto watcher = start(
      {bin_dir + "/cafraft-console", "--endpoints", endpoints(ids), "-c", "watch 6"}, watch_log);
  std::this_thread::sleep_for(1500ms);
  auto spare = "127.0.0.1:" + std::to_string(free_port());
  auto change = console("member add n9 " + spare + "; member remove n9");
  EXPECT_EQ(change.code, 0) << change.out;
  EXPECT_NE(change.out.find("n9 " + spare + " learner"), std::string::npos) << change.out;
  std::this_thread::sleep_for(500ms);
  ::kill(pids[lead], SIGKILL);
  wait_exit(pids[lead]);
  pids[lead] = 0;
  std::vector<std::string> rest;
  for (auto& id : ids)
    if (id != lead)
      rest.push_back(id);
  auto next = leader(rest, lead);
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(wait_exit(watcher, 15s), 0);
  std::ifstream in{watch_log};
  std::stringstream seen;
  seen << in.rdbuf();
  EXPECT_NE(seen.str().find(next + " term "), std::string::npos) << seen.str();
  EXPECT_NE(seen.str().find("became leader"), std::string::npos) << seen.str();
  EXPECT_NE(seen.str().find("follows " + next), std::string::npos) << seen.str();
  EXPECT_NE(seen.str().find("n2, n3, n9 (learner)"), std::string::npos) << seen.str();
  ports.erase(lead);
  ids = rest;
  // A node that is gone is shown as unreachable, and the command says the cluster is unhealthy.
  auto victim = rest.front() == next ? rest.back() : rest.front();
  lead = next;
  ::kill(pids[victim], SIGKILL);
  wait_exit(pids[victim]);
  pids[victim] = 0;
  auto members = console("members");
  EXPECT_EQ(members.code, 2) << members.out;
  auto row = members.out.find(victim + " ");
  ASSERT_NE(row, std::string::npos) << members.out;
  EXPECT_NE(members.out.find("unreachable", row), std::string::npos) << members.out;
  auto json_out = run({bin_dir + "/cafraft-console", "--endpoints", endpoints(ids), "-w", "json",
                       "-c", "inspect " + lead + "/state_machine"},
                      dir);
  EXPECT_EQ(json_out.code, 0) << json_out.out;
  EXPECT_NE(json_out.out.find("\"applied_index\""), std::string::npos) << json_out.out;
}

// cafraft-bench works (its figures are never asserted: they belong in docs/performance.md).
TEST_F(ProcessCluster, BenchToolDrivesAClusterAndReportsJson) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  ASSERT_FALSE(leader(ids).empty());
  auto bench = [&](std::vector<std::string> args) {
    args.insert(args.begin(), bin_dir + "/cafraft-bench");
    for (auto a : {"--duration", "1", "--warmup", "0.2", "-w", "json"})
      args.push_back(a);
    auto r = run(args, dir);
    auto json = r.out.substr(std::min(r.out.find('{'), r.out.size()));
    return std::make_pair(r.code, json);
  };
  // A value that a report of `key` holds, as text ("" if none).
  auto field = [](const std::string& json, const std::string& key) {
    auto at = json.find("\"" + key + "\": ");
    if (at == std::string::npos)
      return std::string{};
    at += key.size() + 4;
    return json.substr(at, json.find_first_of(",\n}", at) - at);
  };
  auto [code, out] =
      bench({"--endpoints", endpoints(ids), "--clients", "4", "--ops", "mixed", "--keys", "50"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_GT(std::stod("0" + field(out, "ops")), 0.0) << out;
  EXPECT_EQ(field(out, "errors"), "0") << out;
  EXPECT_GT(std::stod("0" + field(out, "p50")), 0.0) << out;
  EXPECT_FALSE(field(out, "client_cpu_s_per_1000_ops").empty()) << out;
  // Through a batcher per connection: BatchRequests over CAF networking, writes and
  // linearizable reads, every answer back to its own client.
  auto [code_b, out_b] = bench({"--endpoints", endpoints(ids), "--clients", "40", "--ops", "mixed",
                                "--keys", "50", "--batch", "1", "--connections", "2"});
  EXPECT_EQ(code_b, 0) << out_b;
  EXPECT_GT(std::stod("0" + field(out_b, "ops")), 0.0) << out_b;
  EXPECT_EQ(field(out_b, "errors"), "0") << out_b;
  EXPECT_EQ(field(out_b, "batch"), "1") << out_b;
  // An in-process cluster with in-memory logs, with a console's top every 100 ms.
  auto [code2, out2] =
      bench({"--spawn", "3", "--memory", "--inflight", "8", "--inspect-every", "100"});
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_GT(std::stod("0" + field(out2, "inspections")), 0.0) << out2;
  // Bad flags exit 1.
  EXPECT_EQ(
      run({bin_dir + "/cafraft-bench", "--spawn", "3", "--endpoints", endpoints(ids)}, dir).code,
      1);
  EXPECT_EQ(run({bin_dir + "/cafraft-bench", "--spawn", "3", "--clients", "0"}, dir).code, 1);
  EXPECT_EQ(run({bin_dir + "/cafraft-bench", "--spawn", "3", "--batch", "-1"}, dir).code, 1);
}

// cafraft-floor (W1's floor: four processes, an fdatasync per member, over plain TCP or CAF's
// middleman) completes its writes, says what it measured, and cleans up after itself; its
// figures are not asserted.
TEST_F(ProcessCluster, FloorToolReplicatesWritesAndCleansUp) {
  auto floor = [&](std::vector<std::string> args) {
    args.insert(args.begin(), bin_dir + "/cafraft-floor");
    return run(args, dir);
  };
  for (auto [memory, caf] : {std::pair{false, false}, {true, false}, {false, true}}) {
    std::vector<std::string> args{"--writes", "40", "--warmup", "5", "--dir", dir};
    if (memory)
      args.push_back("--memory");
    if (caf)
      args.push_back("--caf");
    auto r = floor(args);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("writes=40 "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(memory ? "fsync=off" : "fsync=on"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(caf ? "transport=caf" : "transport=tcp"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("p50_us="), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("Connection reset"), std::string::npos) << r.out;
  }
  for (auto name : {"leader.log", "follower0.log", "follower1.log"})
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path{dir} / name)) << name;
  EXPECT_EQ(floor({"--writes", "0"}).code, 1);
  EXPECT_EQ(floor({"--bogus"}).code, 1);
  EXPECT_EQ(floor({"--writes", "5", "--dir", dir + "/no/such/dir"}).code, 2);
  // A member that cannot open its log fails the run (exit 2), over TCP and over CAF.
  auto blocked = dir + "/blocked";
  std::filesystem::create_directories(blocked + "/leader.log");
  for (bool caf : {false, true}) {
    std::vector<std::string> args{"--writes", "5", "--dir", blocked};
    if (caf)
      args.push_back("--caf");
    auto failed = floor(args);
    EXPECT_EQ(failed.code, 2) << failed.out;
    EXPECT_NE(failed.out.find("open log"), std::string::npos) << failed.out;
  }
}

TEST_F(ProcessCluster, InteractiveConsoleRefreshesTopUntilAKeyIsPressed) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  ASSERT_FALSE(leader(ids).empty());
  on_pty con{{bin_dir + "/cafraft-console", "--endpoints", endpoints(ids)}};
  ASSERT_TRUE(con.wait_for("cafraft> ", 1, 10s)) << con.seen();
  con.type("put greeting hello\n");
  ASSERT_TRUE(con.wait_for("OK (index", 1, 10s)) << con.seen();
  ASSERT_TRUE(con.wait_for("cafraft> ", 2, 10s)) << con.seen();
  // top clears the screen and redraws every 2 s until a key is pressed.
  con.type("top\n");
  ASSERT_TRUE(con.wait_for("(press any key to stop)", 2, 15s)) << con.seen();
  EXPECT_GE(con.count("\x1b[2J"), 2u);
  EXPECT_NE(con.seen().find("/leader"), std::string::npos) << con.seen();
  con.type("q");
  ASSERT_TRUE(con.wait_for("cafraft> ", 3, 10s)) << con.seen();
  auto redraws = con.count("\x1b[2J");
  std::this_thread::sleep_for(2500ms);
  con.wait_for("\x1b[2J", redraws + 1, 100ms);
  EXPECT_EQ(con.count("\x1b[2J"), redraws) << "top went on after the key";
  con.type("get greeting\n");
  ASSERT_TRUE(con.wait_for("hello", 1, 10s)) << con.seen();
  con.type("quit\n");
  EXPECT_EQ(con.wait(10s), 0);
}

// Makes a CA and a certificate it signs for `name` under `dir` with the openssl CLI.

} // namespace
} // namespace cafraft::test
