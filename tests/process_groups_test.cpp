// Many Raft groups in cafraft-node processes (docs/groups.md): three processes host five groups
// each (--groups 4 besides group 0) over one TCP connection per pair of processes; every group
// takes writes of its own through cafraftctl --group; a process killed -9 costs each group it
// led an election, and every group goes on; restarted without --groups, the process finds its
// groups in its data directory and catches them all up.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "process_fixture.hpp"
#include "raw_wire.hpp"

namespace cafraft::test {
namespace {

constexpr uint64_t group_count = 5; // group 0 and --groups 4

/// The inodes of the sockets process `pid` holds open.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  auto fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  auto* d = ::opendir(fd_dir.c_str());
  if (d == nullptr)
    return out;
  while (auto* e = ::readdir(d)) {
    char target[256];
    auto path = fd_dir + "/" + e->d_name;
    auto n = ::readlink(path.c_str(), target, sizeof target - 1);
    if (n <= 0)
      continue;
    std::string t{target, static_cast<size_t>(n)};
    if (t.rfind("socket:[", 0) == 0)
      out.insert(t.substr(8, t.size() - 9));
  }
  ::closedir(d);
  return out;
}

/// How many established TCP connections the processes `pids` opened to one of `ports`: the
/// connections between cafraft-node processes, counted once, on their dialing side.
size_t dialed_between(const std::vector<pid_t>& pids, const std::set<uint16_t>& ports) {
  std::set<std::string> inodes;
  for (auto pid : pids)
    for (auto& i : socket_inodes(pid))
      inodes.insert(i);
  size_t n = 0;
  for (auto table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in{table};
    std::string line;
    std::getline(in, line); // the header
    while (std::getline(in, line)) {
      std::istringstream f{line};
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state != "01" || inodes.count(inode) == 0) // 01: ESTABLISHED
        continue;
      auto port =
          static_cast<uint16_t>(std::stoul(remote.substr(remote.find(':') + 1), nullptr, 16));
      n += ports.count(port);
    }
  }
  return n;
}

TEST_F(ProcessCluster, ThreeProcessesServeManyGroupsOverOneConnectionPerPair) {
  phase_clock clock;
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure", "--groups", "4",
                    "--quiesce-after-ms", "300"});
  auto group_args = [](uint64_t g, std::vector<std::string> args) {
    args.insert(args.begin(), {"--group", std::to_string(g)});
    return args;
  };
  std::map<uint64_t, std::string> leaders;
  for (uint64_t g = 0; g < group_count; ++g) {
    leaders[g] = leader(ids, {}, 15s, g);
    ASSERT_FALSE(leaders[g].empty()) << "group " << g << " elected no leader: see " << dir;
  }
  clock("every group has a leader");
  for (uint64_t g = 0; g < group_count; ++g) {
    auto put = ctl(ids, group_args(g, {"put", "k" + std::to_string(g), "v" + std::to_string(g)}));
    ASSERT_EQ(put.code, 0) << "group " << g << ": " << put.out;
  }
  // Each group is a state machine of its own: a key is where it was written, and only there.
  for (uint64_t g = 0; g < group_count; ++g) {
    auto own = ctl(ids, group_args(g, {"get", "k" + std::to_string(g)}));
    EXPECT_EQ(own.out, "v" + std::to_string(g) + "\n") << "group " << g << ": " << own.out;
    auto other = ctl(ids, group_args(g, {"get", "k" + std::to_string((g + 1) % group_count)}));
    EXPECT_EQ(other.code, 2) << "group " << g << " holds a key of another group: " << other.out;
  }
  auto none = ctl(ids, group_args(99, {"get", "k0"}));
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.out.find("unknown_group"), std::string::npos) << none.out;

  auto listed = ctl(ids, {"-w", "json", "group", "list"});
  ASSERT_EQ(listed.code, 0) << listed.out;
  auto groups = nlohmann::json::parse(listed.out)["groups"];
  ASSERT_EQ(groups.size(), group_count) << listed.out;
  for (auto& g : groups) {
    EXPECT_EQ(g["replicas"], 3) << g.dump();
    EXPECT_EQ(g["members"].size(), 3u) << g.dump();
    EXPECT_EQ(g["leader"], leaders[std::stoull(g["group"].get<std::string>())]) << g.dump();
  }

  // The console names each group's replica and its actors.
  auto console = run({bin_dir + "/cafraft-console", "--endpoints", endpoints(ids), "-c",
                      "groups; actors n1/g3; inspect n1/g3/storage"},
                     dir);
  EXPECT_EQ(console.code, 0) << console.out;
  for (auto want : {"REPLICAS", "n1/g3 (node)", "n1/g3/storage", "n1/g3/peer-n2",
                    "n1/g3/storage (storage)", "batches_written"})
    EXPECT_NE(console.out.find(want), std::string::npos) << want << " in:\n" << console.out;
  EXPECT_EQ(console.out.find("n1/g2"), std::string::npos) << console.out;
  // Every frame reached its group: none for a group or from a member the receiver lacks, and
  // each of n1's four other groups sends through its one connection to n2 (a lane for the
  // group's peer, one for its node).
  for (auto conn : {"n1/conn-n2", "n2/conn-n1", "n3/conn-n1"}) {
    auto shown = run({bin_dir + "/cafraft-console", "--endpoints", endpoints(ids), "-w", "json",
                      "-c", std::string{"inspect "} + conn},
                     dir);
    ASSERT_EQ(shown.code, 0) << shown.out;
    auto fields = nlohmann::json::parse(shown.out)["fields"];
    EXPECT_EQ(fields["unknown_group_frames"], "0") << conn;
    EXPECT_EQ(fields["non_member_frames"], "0") << conn;
    EXPECT_EQ(fields["lanes"], "8") << conn;
  }

  // One connection per pair of processes, whatever the number of groups.
  std::vector<pid_t> node_pids;
  std::set<uint16_t> node_ports;
  for (auto& id : ids) {
    node_pids.push_back(pids[id]);
    node_ports.insert(ports[id]);
  }
  EXPECT_EQ(dialed_between(node_pids, node_ports), 3u);
  clock("five groups written, listed, over three connections");

  // Idle, every group goes quiet (docs/membership.md, "Quiescence").
  auto all_quiet = [&] {
    auto r = ctl(ids, {"-w", "json", "group", "list"});
    if (r.code != 0)
      return false;
    auto gs = nlohmann::json::parse(r.out)["groups"];
    return gs.size() == group_count &&
           std::all_of(gs.begin(), gs.end(), [](auto& g) { return g["quiesced"] == true; });
  };
  ASSERT_TRUE(eventually(10s, all_quiet)) << "the idle groups did not quiesce: see " << dir;
  clock("every group quiesced");

  // The process that leads group 0 dies while every group sleeps: the broken connections wake
  // them (once per pair of processes), every group it led elects, and every group goes on.
  auto victim = leaders[0];
  ::kill(pids[victim], SIGKILL);
  EXPECT_EQ(wait_exit(pids[victim]), 128 + SIGKILL);
  pids[victim] = 0;
  std::vector<std::string> rest;
  for (auto& id : ids)
    if (id != victim)
      rest.push_back(id);
  for (uint64_t g = 0; g < group_count; ++g) {
    auto next = leader(rest, victim, 15s, g);
    ASSERT_FALSE(next.empty()) << "group " << g << " lost its leader " << victim
                               << " for good: see " << dir;
    auto put = ctl(rest, group_args(g, {"put", "after" + std::to_string(g), "yes"}));
    EXPECT_EQ(put.code, 0) << "group " << g << ": " << put.out;
  }
  clock("every group elected and wrote without the killed process");

  // Restarted without --groups, it starts the groups its data directory holds.
  start_node(victim, {"--initial-cluster", initial, "--insecure"});
  auto caught_up = [&] {
    auto r = ctl(ids, {"-w", "json", "group", "list"});
    if (r.code != 0)
      return false;
    auto gs = nlohmann::json::parse(r.out)["groups"];
    if (gs.size() != group_count)
      return false;
    for (auto& g : gs)
      if (g["replicas"] != 3)
        return false;
    for (uint64_t g = 0; g < group_count; ++g) {
      auto got = ctl({victim}, group_args(g, {"get", "after" + std::to_string(g), "--read", "stale",
                                              "--min-index", "1"}));
      if (got.out != "yes\n")
        return false;
    }
    return true;
  };
  EXPECT_TRUE(eventually(20s, caught_up))
      << "the restarted process did not catch up its groups: see " << dir;
  clock("the restarted process caught up every group");

  // It leads nothing now (it came back to groups that had leaders): balance hands it some.
  auto balanced = ctl(ids, {"-w", "json", "balance"});
  EXPECT_EQ(balanced.code, 0) << balanced.out;
  std::map<std::string, int> led;
  auto after = nlohmann::json::parse(ctl(ids, {"-w", "json", "group", "list"}).out);
  for (auto& g : after["groups"])
    ++led[g["leader"].get<std::string>()];
  EXPECT_EQ(led.size(), 3u) << balanced.out;
  for (auto& [id, n] : led)
    EXPECT_TRUE(n == 1 || n == 2) << id << " leads " << n << " of 5 groups: " << balanced.out;
  clock("balanced");
}

TEST_F(ProcessCluster, GroupsAreCreatedAndRemovedAtRunTimeAndSurviveARestart) {
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  auto admin_port = free_port();
  for (auto& id : ids) {
    std::vector<std::string> args{"--initial-cluster", initial, "--insecure"};
    if (id == std::string{"n1"})
      args.insert(args.end(), {"--admin", "127.0.0.1:" + std::to_string(admin_port)});
    start_node(id, args);
  }
  ASSERT_FALSE(leader(ids).empty()) << "no leader: see " << dir;
  auto listed = [&] {
    auto r = ctl(ids, {"-w", "json", "group", "list"});
    return r.code == 0 ? nlohmann::json::parse(r.out)["groups"] : nlohmann::json::array();
  };
  EXPECT_EQ(listed().size(), 1u); // a process's own group

  // Group 7 on two of the three processes.
  auto created = ctl(ids, {"group", "create", "7", "--members", "n1,n2"});
  ASSERT_EQ(created.code, 0) << created.out;
  ASSERT_FALSE(leader(ids, {}, 10s, 7).empty()) << "group 7 elected no leader: see " << dir;
  ASSERT_EQ(ctl(ids, {"--group", "7", "put", "k", "in7"}).code, 0);
  EXPECT_EQ(ctl(ids, {"--group", "7", "get", "k"}).out, "in7\n");
  EXPECT_EQ(ctl(ids, {"get", "k"}).code, 2) << "group 0 holds a key of group 7";
  auto groups = listed();
  ASSERT_EQ(groups.size(), 2u) << groups.dump();
  EXPECT_EQ(groups[1]["group"], "7");
  EXPECT_EQ(groups[1]["replicas"], 2);
  EXPECT_EQ(groups[1]["members"].size(), 2u);
  EXPECT_FALSE(fs::exists(dir + "/n3/g7")) << "n3 is no member of group 7";
  EXPECT_TRUE(fs::exists(dir + "/n1/g7.members")) << "its first members are written down";
  // The admin endpoint lists the process's groups.
  httplib::Client http{"127.0.0.1", admin_port};
  auto answer = http.Get("/v1/groups");
  ASSERT_TRUE(answer) << "no answer from /v1/groups";
  EXPECT_EQ(answer->status, 200);
  auto served = nlohmann::json::parse(answer->body)["groups"];
  ASSERT_EQ(served.size(), 2u) << answer->body;
  EXPECT_EQ(served[0]["group"], "0");
  EXPECT_EQ(served[1]["group"], "7");
  EXPECT_EQ(served[1]["id"], "n1");
  EXPECT_EQ(served[1]["members"].size(), 2u);
  // n3 is a member of group 0 but not of group 7: Raft messages for group 7 in n3's name (a
  // leader and a candidate of a far later term) are dropped, however well formed.
  auto group7 = [&] {
    auto r = ctl(ids, {"--group", "7", "-w", "json", "status"});
    return nlohmann::json::parse(r.out)["endpoints"][0];
  };
  auto before = group7();
  for (auto& id : {"n1", "n2"}) {
    pb::Frame ae, vote;
    ae.set_group(7);
    ae.mutable_append_entries()->set_term(1000000);
    ae.mutable_append_entries()->set_leader_id("n3");
    vote.set_group(7);
    vote.mutable_request_vote()->set_term(1000000);
    vote.mutable_request_vote()->set_candidate_id("n3");
    vote.mutable_request_vote()->set_last_log_index(1000000);
    vote.mutable_request_vote()->set_last_log_term(1000000);
    int fd = tcp_connect(ports[id]);
    ASSERT_GE(fd, 0);
    auto bytes = hello("n3") + frame_bytes(ae) + frame_bytes(vote);
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    std::this_thread::sleep_for(200ms);
    ::close(fd);
  }
  auto after = group7();
  EXPECT_EQ(after["term"], before["term"]) << "group 7 took a Raft message of a non-member";
  EXPECT_EQ(after["leader"], before["leader"]);
  EXPECT_EQ(ctl(ids, {"--group", "7", "get", "k"}).out, "in7\n");
  std::ifstream log{dir + "/n1.log"};
  std::string text{std::istreambuf_iterator<char>{log}, {}};
  EXPECT_NE(text.find("drops the Raft messages of n3"), std::string::npos) << "see " << dir;

  // Created again: nothing changes. A member that is not one: refused.
  EXPECT_EQ(ctl(ids, {"group", "create", "7", "--members", "n1,n2"}).code, 0);
  EXPECT_EQ(ctl(ids, {"--group", "7", "get", "k"}).out, "in7\n");
  EXPECT_EQ(ctl(ids, {"group", "create", "8", "--members", "n1,n9"}).code, 1);
  EXPECT_EQ(ctl(ids, {"group", "create", "0"}).code, 1);
  // The nodes check too: a member named twice would count its own vote twice.
  auto twice = ctl(ids, {"group", "create", "8", "--members", "n1,n1,n2"});
  EXPECT_EQ(twice.code, 2) << twice.out;
  EXPECT_NE(twice.out.find("named twice"), std::string::npos) << twice.out;
  EXPECT_FALSE(fs::exists(dir + "/n1/g8"));

  // A peer of the protocol before groups (version 1) cannot name a group: its connection is
  // closed, and nothing it sent reaches group 7.
  {
    pb::Frame old;
    auto* h = old.mutable_hello();
    h->set_magic(wire::magic);
    h->set_min_version(1);
    h->set_max_version(1);
    pb::Frame ask;
    ask.set_id(1);
    ask.set_group(7);
    ask.mutable_status();
    int fd = tcp_connect(ports["n1"]);
    ASSERT_GE(fd, 0);
    auto bytes = frame_bytes(old) + frame_bytes(ask);
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    timeval one_second{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &one_second, sizeof one_second);
    std::string got;
    char buf[4096];
    ssize_t n = 0;
    auto until = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < until && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
      got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(n, 0) << "the connection stayed open";
    ::close(fd);
    // What came: the Welcome, and no answer to the request.
    for (size_t at = 0; at + 4 <= got.size();) {
      auto len = (uint32_t{static_cast<uint8_t>(got[at])} << 24) |
                 (uint32_t{static_cast<uint8_t>(got[at + 1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(got[at + 2])} << 8) |
                 uint32_t{static_cast<uint8_t>(got[at + 3])};
      pb::Frame f;
      ASSERT_LE(at + 4 + len, got.size());
      ASSERT_TRUE(f.ParseFromArray(got.data() + at + 4, static_cast<int>(len)));
      EXPECT_FALSE(f.answer()) << "answered at version 1: " << f.ShortDebugString();
      at += 4 + len;
    }
  }

  // Both members restart without a word about group 7: their data directories hold it.
  for (auto& id : {"n1", "n2"}) {
    ::kill(pids[id], SIGTERM);
    EXPECT_EQ(wait_exit(pids[id]), 0);
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  }
  EXPECT_TRUE(eventually(15s,
                         [&] {
                           return ctl(ids, {"--group", "7", "get", "k"}).out == "in7\n";
                         }))
      << "group 7 did not come back with its processes: see " << dir;

  // n2 leaves group 7 (and only group 7): its replica there stops for good, and the process
  // still starts, with its own group, when that replica's data says it was removed.
  auto left = ctl(ids, {"--group", "7", "member", "remove", "n2"});
  ASSERT_EQ(left.code, 0) << left.out;
  ::kill(pids["n2"], SIGTERM);
  EXPECT_EQ(wait_exit(pids["n2"]), 0);
  start_node("n2", {"--initial-cluster", initial, "--insecure"});
  EXPECT_TRUE(eventually(10s, [&] { return ctl({"n2"}, {"status"}).code == 0; }))
      << "n2 did not start again: see " << dir;
  EXPECT_EQ(ctl(ids, {"--group", "7", "put", "k", "alone"}).code, 0);
  EXPECT_EQ(ctl(ids, {"put", "k", "zero"}).code, 0);

  auto removed = ctl(ids, {"group", "remove", "7"});
  EXPECT_EQ(removed.code, 0) << removed.out;
  EXPECT_EQ(listed().size(), 1u);
  for (auto& id : {"n1", "n2"})
    for (auto leftover : {"/g7", "/g7.members", "/g7.removed"})
      EXPECT_FALSE(fs::exists(dir + "/" + id + leftover)) << id << leftover;
  auto gone = ctl(ids, {"--group", "7", "get", "k"});
  EXPECT_EQ(gone.code, 2);
  EXPECT_NE(gone.out.find("unknown_group"), std::string::npos) << gone.out;
}

} // namespace
} // namespace cafraft::test
