// Real cafraft-node processes on 127.0.0.1 with free ports, driven with cafraftctl and with a
// remote_client (ctest label "process"): a cluster forms, takes writes, loses its leader to
// kill -9, elects another, takes the node back from its data, grows by a node that joins and
// shrinks by one that leaves; with TLS, a certificate from another CA is refused.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <httplib.h>

#include "actors/remote_client.hpp"
#include "apps/admin.hpp"
#include "apps/subprocess.hpp"
#include "eventually.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace pb = cafraft::pb;

namespace {

const std::string bin_dir = CAFRAFT_BIN_DIR;

uint16_t free_port() {
  return cafraft::free_loopback_port();
}

pid_t start(const std::vector<std::string>& args, const std::string& log) {
  return cafraft::start_process(args, log);
}

using cafraft::test::eventually;
using steady = std::chrono::steady_clock;

// Waits for `pid` to exit; returns its exit code (or 128 + signal), -1 on timeout.
int wait_exit(pid_t pid, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > until)
      return -1;
    std::this_thread::sleep_for(10ms);
  }
}

struct run_result {
  int code = -1;
  std::string out;
};

// Runs a command to completion and captures stdout and stderr.
run_result run(const std::vector<std::string>& args, const std::string& dir) {
  static int n = 0;
  auto log = dir + "/cmd-" + std::to_string(++n) + ".out";
  auto pid = start(args, log);
  run_result r;
  r.code = wait_exit(pid, 30s);
  std::ifstream in{log};
  std::stringstream ss;
  ss << in.rdbuf();
  r.out = ss.str();
  return r;
}

// A program on a pseudo terminal, as a person at a keyboard would run it.
class on_pty {
public:
  explicit on_pty(const std::vector<std::string>& args) {
    winsize ws{40, 120, 0, 0};
    pid_ = ::forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      ::setenv("TERM", "dumb", 1);
      cafraft::exec_or_exit(args);
    }
  }
  ~on_pty() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_);
    }
    ::close(fd_);
  }
  on_pty(const on_pty&) = delete;
  on_pty& operator=(const on_pty&) = delete;

  void type(const std::string& keys) {
    EXPECT_EQ(::write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  /// Reads until `text` appeared `times` times in all that was read, or `limit` passed.
  bool wait_for(const std::string& text, size_t times, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (count(text) < times && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      char buf[4096];
      auto n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0)
        break;
      seen_.append(buf, static_cast<size_t>(n));
    }
    return count(text) >= times;
  }

  size_t count(const std::string& text) const {
    size_t n = 0;
    for (auto at = seen_.find(text); at != std::string::npos; at = seen_.find(text, at + 1))
      ++n;
    return n;
  }

  const std::string& seen() const { return seen_; }

  /// Waits for the program to exit; returns its exit code, -1 on timeout.
  int wait(std::chrono::milliseconds limit) {
    auto code = wait_exit(pid_, limit);
    if (code >= 0)
      pid_ = -1;
    return code;
  }

private:
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string seen_;
};

struct process_config : caf::actor_system_config {
  process_config() {
    cafraft::register_types(*this);
    load<caf::io::middleman>();
    set("middleman.heartbeat-interval", caf::timespan{200ms});
    set("middleman.connection-timeout", caf::timespan{2s});
  }
};

class ProcessCluster : public ::testing::Test {
protected:
  void SetUp() override {
    cafraft::get_logger("cafraft-client")->set_level(spdlog::level::off);
    // The programs read CAFRAFT_* variables: the developer's shell must not change the tests.
    for (auto v : {"CAFRAFT_ID", "CAFRAFT_DATA_DIR", "CAFRAFT_LISTEN", "CAFRAFT_INITIAL_CLUSTER",
                   "CAFRAFT_JOIN", "CAFRAFT_CLUSTER_ID", "CAFRAFT_TLS_CERT", "CAFRAFT_TLS_KEY",
                   "CAFRAFT_TLS_CA", "CAFRAFT_INSECURE", "CAFRAFT_ENDPOINTS", "CAFRAFT_LOG_LEVEL"})
      ::unsetenv(v);
    char tmpl[] = "/tmp/cafraft-process-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override {
    for (auto& [id, pid] : pids)
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        wait_exit(pid);
      }
    if (!HasFailure())
      fs::remove_all(dir);
    else
      std::printf("logs kept in %s\n", dir.c_str());
  }

  std::string address(const std::string& id) { return "127.0.0.1:" + std::to_string(ports[id]); }

  std::vector<std::string> node_args(const std::string& id, std::vector<std::string> extra) {
    std::vector<std::string> a{bin_dir + "/cafraft-node",
                               "--id",
                               id,
                               "--data-dir",
                               dir + "/" + id,
                               "--listen",
                               address(id),
                               "--election-min-ms",
                               "300",
                               "--election-max-ms",
                               "600",
                               "--heartbeat-ms",
                               "50"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  void start_node(const std::string& id, std::vector<std::string> extra) {
    if (!ports.count(id))
      ports[id] = free_port();
    pids[id] = start(node_args(id, std::move(extra)), dir + "/" + id + ".log");
  }

  // Picks a port for each of `ids` and returns their --initial-cluster value.
  std::string initial_cluster(const std::vector<std::string>& ids) {
    std::string out;
    for (auto& id : ids) {
      ports[id] = free_port();
      out += (out.empty() ? "" : ",") + id + "=" + address(id);
    }
    return out;
  }

  std::string endpoints(const std::vector<std::string>& ids) {
    std::string out;
    for (auto& id : ids)
      out += (out.empty() ? "" : ",") + address(id);
    return out;
  }

  run_result ctl(const std::vector<std::string>& ids, std::vector<std::string> args,
                 std::vector<std::string> tls = {}) {
    std::vector<std::string> a{bin_dir + "/cafraftctl", "--endpoints", endpoints(ids)};
    a.insert(a.end(), tls.begin(), tls.end());
    a.insert(a.end(), args.begin(), args.end());
    return run(a, dir);
  }

  // The leader's id, as cafraftctl reports it (other than `not`).
  std::string leader(const std::vector<std::string>& ids, const std::string& not_this = {},
                     std::chrono::milliseconds limit = 10s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      auto r = ctl(ids, {"leader"});
      auto id = r.out.substr(0, r.out.find(' '));
      if (r.code == 0 && id != not_this)
        return id;
      std::this_thread::sleep_for(100ms);
    }
    return {};
  }

  std::string dir;
  std::map<std::string, uint16_t> ports;
  std::map<std::string, pid_t> pids;
};

// Prints how long the test has run, for finding slow phases.
struct phase_clock {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void operator()(const char* what) const {
    auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[%6.2f s] %s\n", s, what);
  }
};

TEST_F(ProcessCluster, SurvivesLeaderKillAndMembershipChanges) {
  phase_clock phase;
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  auto first = leader(ids);
  ASSERT_FALSE(first.empty()) << "no leader: see " << dir;
  phase("a leader was elected");

  // cafraftctl: put, get, a missing key, cas both ways.
  auto put = ctl(ids, {"put", "greeting", "hello"});
  EXPECT_EQ(put.code, 0) << put.out;
  auto get = ctl(ids, {"get", "greeting"});
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "hello\n");
  auto missing = ctl(ids, {"get", "nope"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.out.find("key not found"), std::string::npos);
  auto cas_bad = ctl(ids, {"cas", "greeting", "hi", "bye"});
  EXPECT_EQ(cas_bad.code, 2);
  EXPECT_NE(cas_bad.out.find("compare failed"), std::string::npos);
  EXPECT_NE(cas_bad.out.find("hello"), std::string::npos);
  EXPECT_EQ(ctl(ids, {"cas", "greeting", "hello", "bye"}).code, 0);

  // 500 writes through a client of the cluster.
  process_config cfg;
  caf::actor_system sys{cfg};
  std::vector<std::string> eps;
  for (auto& id : ids)
    eps.push_back(address(id));
  std::map<std::string, std::string> acknowledged;
  {
    cafraft::remote_client client{sys, eps, false, 10s};
    for (int i = 0; i < 500; ++i) {
      pb::PutRequest req;
      req.set_key("k" + std::to_string(i));
      req.set_value("v" + std::to_string(i));
      auto w = client.call<pb::WriteResponse>(req);
      ASSERT_TRUE(w) << "write " << i << ": " << cafraft::render(w.error());
      acknowledged[req.key()] = req.value();
    }
    phase("500 writes acknowledged");
    // A watcher of the dialer connected to the leader: it hears of the broken connection as
    // soon as the process is gone (actors/peer.hpp), not at some request's timeout.
    auto dialer = client.connect(address(first), 2000ms);
    ASSERT_TRUE(dialer);
    auto watching = std::make_shared<std::atomic<bool>>(false);
    auto told_at = std::make_shared<std::atomic<int64_t>>(0);
    auto watcher = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->send(dialer, cafraft::connection_watch_atom::value);
      // Answered after the watch was taken: one sender's messages arrive in order.
      self->request(dialer, caf::infinite, cafraft::peer_stats_atom::value)
          .then([=](uint64_t, uint64_t, bool) { *watching = true; });
      return {[=](cafraft::connection_lost_atom, const caf::actor& via) {
        if (via == dialer)
          *told_at = steady::now().time_since_epoch().count();
      }};
    });
    ASSERT_TRUE(eventually(2s, [&] { return watching->load(); }));
    // kill -9 the leader; another is elected and writes go on.
    auto killed_at = steady::now();
    ::kill(pids[first], SIGKILL);
    EXPECT_EQ(wait_exit(pids[first]), 128 + SIGKILL);
    pids[first] = 0;
    ASSERT_TRUE(eventually(2s, [&] { return told_at->load() != 0; }))
        << "the dialer's watcher was not told of the broken connection";
    std::printf("[process] the watcher heard of the lost connection %lld ms after the kill\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        steady::time_point{steady::duration{told_at->load()}} - killed_at)
                        .count()));
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    std::vector<std::string> rest;
    for (auto& id : ids)
      if (id != first)
        rest.push_back(id);
    auto second = leader(rest, first);
    ASSERT_FALSE(second.empty());
    EXPECT_NE(second, first);
    // The killed member is listed, with its error, and the list says the cluster is unhealthy.
    auto list = ctl(ids, {"member", "list"});
    EXPECT_EQ(list.code, 2) << list.out;
    auto row = list.out.find(first + "  ");
    ASSERT_NE(row, std::string::npos) << list.out;
    EXPECT_NE(list.out.find("unreachable", row), std::string::npos) << list.out;
    for (int i = 500; i < 600; ++i) {
      pb::PutRequest req;
      req.set_key("k" + std::to_string(i));
      req.set_value("v" + std::to_string(i));
      auto w = client.call<pb::WriteResponse>(req);
      ASSERT_TRUE(w) << "write " << i << " after the kill: " << cafraft::render(w.error());
      acknowledged[req.key()] = req.value();
    }
  }
  phase("the old leader was killed; 100 more writes acknowledged");
  // The killed node restarts from its data (membership flags are ignored) and catches up.
  start_node(first, {"--initial-cluster", initial, "--insecure"});
  // A fourth node joins, and one of the first three leaves.
  start_node("a4", {"--join", endpoints(ids), "--insecure"});
  std::vector<std::string> all{"n1", "n2", "n3", "a4"};
  bool four = false;
  for (int i = 0; i < 100 && !four; ++i) {
    auto list = ctl(all, {"member", "list"});
    four = list.code == 0 && list.out.find("a4") != std::string::npos &&
           list.out.find("learner") == std::string::npos;
    if (!four)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(four) << ctl(all, {"member", "list"}).out;
  phase("a4 (an id that sorts first: it dials the others) joined and was promoted");
  auto cur = leader(all);
  auto leaving = cur == "n2" ? std::string{"n3"} : std::string{"n2"};
  auto removed = ctl(all, {"member", "remove", leaving});
  ASSERT_EQ(removed.code, 0) << removed.out;
  EXPECT_EQ(wait_exit(pids[leaving], 10s), 2) << "the removed node did not stop by itself";
  pids[leaving] = 0;
  std::vector<std::string> members;
  for (auto& id : all)
    if (id != leaving)
      members.push_back(id);
  auto list = ctl(members, {"member", "list"});
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_EQ(list.out.find(leaving + " "), std::string::npos) << list.out;
  phase("a member left and stopped");
  // An operator adds n5 first; the node then starts with --join and claims the member.
  ports["n5"] = free_port();
  auto added = ctl(members, {"member", "add", "n5", address("n5")});
  ASSERT_EQ(added.code, 0) << added.out;
  EXPECT_NE(added.out.find("n5"), std::string::npos) << added.out;
  start_node("n5", {"--join", endpoints(members), "--insecure"});
  bool five = false;
  for (int i = 0; i < 100 && !five; ++i) {
    auto l = ctl(members, {"-w", "json", "member", "list"});
    five = l.code == 0 && l.out.find("\"id\": \"n5\"") != std::string::npos &&
           l.out.find("\"voter\": false") == std::string::npos;
    if (!five)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(five) << ctl(members, {"member", "list"}).out;
  members.push_back("n5");
  phase("an operator added n5, which joined and was promoted");
  // Every acknowledged write is readable from every remaining node.
  cafraft::remote_client reader{sys, {}, false};
  for (auto& id : members) {
    bool caught_up = false;
    for (int attempt = 0; attempt < 100 && !caught_up; ++attempt) {
      pb::GetRequest req;
      req.set_key("k599");
      req.set_stale(true);
      auto r = reader.ask<pb::GetResponse>(address(id), req, 1s);
      caught_up = r && r->found();
      if (!caught_up)
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(caught_up) << id << " did not catch up";
    size_t wrong = 0;
    for (auto& [k, v] : acknowledged) {
      pb::GetRequest req;
      req.set_key(k);
      req.set_stale(true);
      auto r = reader.ask<pb::GetResponse>(address(id), req, 1s);
      wrong += !r || !r->found() || r->value() != v;
    }
    EXPECT_EQ(wrong, 0u) << id << " lacks acknowledged writes";
  }
  phase("every acknowledged write read back from every node");
  // SIGTERM stops a node cleanly.
  ::kill(pids["a4"], SIGTERM);
  EXPECT_EQ(wait_exit(pids["a4"]), 0);
  pids["a4"] = 0;
}

TEST_F(ProcessCluster, BadFlagsExitWithOneAndTouchNothing) {
  ports["n1"] = free_port();
  auto data = dir + "/n1";
  auto cases = std::vector<std::vector<std::string>>{
      {"--insecure"},                                        // no membership flag
      {"--initial-cluster", "n1=bad-address", "--insecure"}, // bad member address
      {"--initial-cluster", "n2=127.0.0.1:1", "--insecure"}, // does not name itself
      {"--initial-cluster", "n1=" + address("n1")},          // neither TLS nor --insecure
      {"--initial-cluster", "n1=" + address("n1"), "--tls-cert", "/nope", "--tls-key", "/nope",
       "--tls-ca", "/nope"},         // unreadable TLS files
      {"--join", "x", "--insecure"}, // bad join address
  };
  for (auto& extra : cases) {
    auto r = run(node_args("n1", extra), dir);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(data)) << "a bad flag created the data directory";
  }
  // Options from a config file, and from CAFRAFT_* environment variables.
  {
    std::ofstream conf{dir + "/node.conf"};
    conf << "id = \"n1\"\ndata-dir = \"" << data << "\"\nlisten = \"from-the-file\"\n";
  }
  auto from_file =
      run({bin_dir + "/cafraft-node", "--config", dir + "/node.conf", "--insecure"}, dir);
  EXPECT_EQ(from_file.code, 1);
  EXPECT_NE(from_file.out.find("from-the-file"), std::string::npos) << from_file.out;
  ::setenv("CAFRAFT_LISTEN", "from-the-environment", 1);
  auto from_env =
      run({bin_dir + "/cafraft-node", "--id", "n1", "--data-dir", data, "--insecure"}, dir);
  ::unsetenv("CAFRAFT_LISTEN");
  EXPECT_EQ(from_env.code, 1);
  EXPECT_NE(from_env.out.find("from-the-environment"), std::string::npos) << from_env.out;
  EXPECT_FALSE(fs::exists(data));
  {
    // A port in use: refused before the data directory is made.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(ports["n1"]);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::listen(fd, 1);
    auto busy =
        run(node_args("n1", {"--initial-cluster", "n1=" + address("n1"), "--insecure"}), dir);
    ::close(fd);
    EXPECT_EQ(busy.code, 1) << busy.out;
    EXPECT_NE(busy.out.find("cannot listen"), std::string::npos) << busy.out;
    EXPECT_FALSE(fs::exists(data));
  }
  auto bad_tls = run({bin_dir + "/cafraftctl", "--endpoints", "127.0.0.1:1", "--tls-cert", "/nope",
                      "--tls-key", "/nope", "--tls-ca", "/nope", "get", "k"},
                     dir);
  EXPECT_EQ(bad_tls.code, 1) << bad_tls.out;
  auto help = run({bin_dir + "/cafraft-node", "--help"}, dir);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--initial-cluster"), std::string::npos);
  auto usage = run({bin_dir + "/cafraftctl", "--endpoints", "x", "get", "k"}, dir);
  EXPECT_EQ(usage.code, 1);
  auto nobody = run(
      {bin_dir + "/cafraftctl", "--endpoints", "127.0.0.1:1", "--timeout-ms", "500", "get", "k"},
      dir);
  EXPECT_EQ(nobody.code, 3) << nobody.out;
}

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
void make_ca(const std::string& dir, const std::string& ca) {
  auto cmd = "cd " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca +
             " -keyout " + ca + ".key -out " + ca + ".pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

void make_cert(const std::string& dir, const std::string& ca, const std::string& name) {
  auto cmd = "cd " + dir + " && openssl req -newkey rsa:2048 -nodes -subj /CN=" + name +
             " -keyout " + name + ".key -out " + name + ".csr >/dev/null 2>&1 && openssl x509 " +
             "-req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
             ".key -CAcreateserial -days 2 -out " + name + ".pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(ProcessCluster, MutualTlsRefusesAForeignCertificate) {
  make_ca(dir, "ca");
  make_ca(dir, "rogue-ca");
  for (auto n : {"n1", "n2", "n3", "client"})
    make_cert(dir, "ca", n);
  make_cert(dir, "rogue-ca", "rogue");
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  auto tls = [&](const std::string& name, const std::string& ca) {
    return std::vector<std::string>{"--tls-cert", dir + "/" + name + ".pem",
                                    "--tls-key",  dir + "/" + name + ".key",
                                    "--tls-ca",   dir + "/" + ca + ".pem"};
  };
  for (auto& id : ids) {
    auto extra = tls(id, "ca");
    extra.insert(extra.begin(), {"--initial-cluster", initial});
    start_node(id, extra);
  }
  auto client = tls("client", "ca");
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = ctl(ids, {"put", "k", "v"}, client).code == 0;
    if (!up)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << "the TLS cluster took no write: see " << dir;
  auto get = ctl(ids, {"get", "k"}, client);
  EXPECT_EQ(get.code, 0) << get.out;
  EXPECT_EQ(get.out, "v\n");
  // A client whose certificate comes from another CA is refused by every node.
  auto rogue = ctl(ids, {"--timeout-ms", "1500", "get", "k"}, tls("rogue", "ca"));
  EXPECT_EQ(rogue.code, 3) << rogue.out;
  // So is a node: it never gets in.
  auto extra = tls("rogue", "ca");
  extra.insert(extra.begin(), {"--join", endpoints(ids), "--log-level", "debug"});
  start_node("n9", extra);
  bool refused = false; // it tried, and its connection was refused
  for (int i = 0; i < 100 && !refused; ++i) {
    std::ifstream in{dir + "/n9.log"};
    std::stringstream log;
    log << in.rdbuf();
    refused = log.str().find("cannot reach") != std::string::npos;
    if (!refused)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(refused) << "n9 never tried to connect";
  // Every member answers (a TLS handshake can take a while on a loaded machine), and n9 is
  // not among them.
  run_result list;
  for (int i = 0; i < 20; ++i) {
    list = ctl(ids, {"member", "list"}, client);
    if (list.code == 0)
      break;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_EQ(list.out.find("n9"), std::string::npos) << list.out;
}

} // namespace
