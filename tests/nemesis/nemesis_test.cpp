// The nemesis tier (ctest label nemesis, root only; docs/testing.md): real cafraft-node
// processes, each in its own network namespace on one bridge, while concurrent clients record
// a history of reads, writes and compare-and-swaps and a nemesis driven by a seed partitions
// the network, kills, pauses, fills a node's disk and removes and re-adds members. At the end
// everything is healed and the history must be linearizable, with every acknowledged write in
// the values that every node holds.
//
// Environment:
//   CAFRAFT_NEMESIS_SEED=S        replay seed S alone (in the first test; the others skip)
//   CAFRAFT_NEMESIS_SEEDS=N       N seeds, spread over the three tests (default 3)
//   CAFRAFT_NEMESIS_FIRST_SEED=F  the first of them (default 1)
//   CAFRAFT_NEMESIS_SECONDS=T     seconds of faults per seed (default 55)
//   CAFRAFT_NEMESIS_NODES=3|5     the cluster's size (default: the seed chooses)
//   CAFRAFT_NEMESIS_FAULTS=a,b    only these faults (isolate, leader-minority, bridge, kill,
//                                 pause, disk-full, churn; default: all)
//   CAFRAFT_NEMESIS_KEEP=1        keep the run's directory even when it passes
//   CAFRAFT_NEMESIS_VERBOSE=1     print the schedule as it happens
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "history.hpp"
#include "netlab.hpp"
#include "tests/lin/linearizability.hpp"
#include "tests/realtime.hpp"
#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::nemesis {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

const std::string bin_dir = CAFRAFT_BIN_DIR;
const std::string build_dir = CAFRAFT_BUILD_DIR;
constexpr int node_port = 7000;
constexpr int slots = 3; // the gtest tests the seeds are spread over

// ^C or SIGTERM: the run stops at the next check, heals and removes what it made.
std::atomic<int> interrupted{0};
extern "C" void on_stop_signal(int sig) {
  interrupted = sig;
}

struct interrupted_error : std::runtime_error {
  interrupted_error() : std::runtime_error("interrupted by a signal") {}
};

uint64_t env_u64(const char* name, uint64_t fallback) {
  auto v = std::getenv(name);
  if (!v || !*v)
    return fallback;
  return std::strtoull(v, nullptr, 10);
}

double secs(int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, x);
  return buf;
}

// The seeds a test runs: CAFRAFT_NEMESIS_SEED alone, or its share of the N seeds.
std::vector<uint64_t> seeds_for(int slot) {
  if (auto one = std::getenv("CAFRAFT_NEMESIS_SEED"); one && *one) {
    if (slot == 0)
      return {std::strtoull(one, nullptr, 10)};
    return {};
  }
  auto n = env_u64("CAFRAFT_NEMESIS_SEEDS", 3);
  auto first = env_u64("CAFRAFT_NEMESIS_FIRST_SEED", 1);
  std::vector<uint64_t> out;
  for (uint64_t i = static_cast<uint64_t>(slot); i < n; i += slots)
    out.push_back(first + i);
  return out;
}

// Errors after which the request surely took no effect (messages/errors.hpp says "Definite");
// every other error, CAF's own included, leaves the outcome unknown.
bool definite(const caf::error& e) {
  if (e.category() != error_category)
    return false;
  switch (static_cast<errc>(e.code())) {
  case errc::not_leader:
  case errc::unknown_leader:
  case errc::config_change_in_progress:
  case errc::self_join:
  case errc::missing_data:
  case errc::duplicate_member:
  case errc::removed_member:
  case errc::overloaded:
  case errc::invalid_request:
  case errc::shutting_down:
  case errc::unreachable:
    return true;
  default:
    return false;
  }
}

std::string error_name(const caf::error& e) {
  if (e.category() == error_category)
    return to_string(static_cast<errc>(e.code()));
  if (e.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(e.code()));
  return "other";
}

// ---------------------------------------------------------------------------------------------
// Clients

struct client_stats {
  std::mutex mtx;
  std::map<std::string, int> errors; // "rejected: not_leader", "unknown: timeout", ...
  void count(const std::string& what) {
    std::lock_guard<std::mutex> guard{mtx};
    ++errors[what];
  }
};

struct client_options {
  caf::actor_system* sys = nullptr;
  std::vector<std::string> endpoints;
  std::vector<std::string> keys;
  recorder* rec = nullptr;
  client_stats* stats = nullptr;
  const std::atomic<bool>* stop = nullptr;
  steady::time_point hard_stop;
  uint64_t seed = 0;
  int index = 0;
  int clients = 0;
};

// Sends `req` to the client's own node first, every time, and follows redirects from there
// (remote_client::call would stay with the node that answered last, the leader, so that no
// client would be left with a deposed leader while another writes through the new one). A
// node that fails definitely, or a read that is not answered in 2 s, passes the request to
// the next node; a write's indefinite failure ends it. At most 3 s.
template <class Resp, class Req>
caf::expected<Resp> call_from(remote_client& rc, const std::vector<std::string>& eps, size_t home,
                              const Req& req) {
  constexpr bool write = remote_client::writes<Req>();
  auto until = steady::now() + 3s;
  auto next = home;
  auto target = eps[home];
  caf::error last = make_error(errc::unreachable, "no endpoint answered");
  auto backoff = 20ms;
  for (int hops = 0; hops < 64 && steady::now() < until; ++hops) {
    auto left = std::chrono::duration_cast<ms>(until - steady::now());
    left = std::min<ms>(left, write ? 500ms : 2000ms);
    auto r = rc.ask<Resp>(target, req, std::max<ms>(left, 1ms), 500ms);
    if (r)
      return r;
    last = r.error();
    std::string id, address;
    if (leader_hint(last, id, address) && !address.empty() && address != target) {
      target = address;
      continue;
    }
    if (remote_client::final_error(last) || (write && is_indefinite(last)))
      return last;
    target = eps[++next % eps.size()];
    std::this_thread::sleep_for(backoff);
    backoff = std::min<ms>(backoff * 2, 500ms);
  }
  return last;
}

// One client: operations one after another on random keys, each sent to the client's own node
// (clients are spread over the nodes) and recorded with its invocation and completion. After an
// unknown outcome the client goes on under a new id, as a new process would (the unknown
// operation never ends).
void client_main(client_options o) {
  std::mt19937_64 rng{o.seed * 7919 + static_cast<uint64_t>(o.index)};
  const auto& eps = o.endpoints;
  auto home = static_cast<size_t>(o.index) % eps.size();
  remote_client rc{*o.sys, eps, tls_files{}, 3s};
  int id = o.index;
  std::map<std::string, std::optional<std::string>> seen; // the value last seen per key
  constexpr int max_ops = 100000;
  for (int n = 0; n < max_ops && !*o.stop && !interrupted && steady::now() < o.hard_stop; ++n) {
    lin::operation op;
    op.client = id;
    op.key = o.keys[rng() % o.keys.size()];
    auto pick = rng() % 100;
    auto value = "c" + std::to_string(o.index) + "-" + std::to_string(n);
    // One write in three goes to a key of its own, never written again: the final read-back
    // then shows every acknowledged write, not just the last of a contended key.
    if (pick >= 80)
      op.key = "u" + value;
    std::optional<caf::error> err;
    if (pick < 35) {
      op.kind = lin::op_kind::read;
      pb::GetRequest req;
      req.set_key(op.key);
      op.invoke = o.rec->now();
      auto r = call_from<pb::GetResponse>(rc, eps, home, req);
      op.complete = o.rec->now();
      if (r) {
        if (r->found())
          op.read_value = r->value();
        seen[op.key] = op.read_value;
      } else {
        err = r.error();
      }
    } else if (pick < 55 || pick >= 80) {
      op.kind = lin::op_kind::write;
      op.value = value;
      pb::PutRequest req;
      req.set_key(op.key);
      req.set_value(value);
      op.invoke = o.rec->now();
      auto r = call_from<pb::WriteResponse>(rc, eps, home, req);
      op.complete = o.rec->now();
      if (r && pick < 80)
        seen[op.key] = value;
      else if (!r)
        err = r.error();
    } else {
      op.kind = lin::op_kind::cas;
      op.value = value;
      op.expected = seen[op.key];
      pb::CasRequest req;
      req.set_key(op.key);
      req.set_value(value);
      if (op.expected)
        req.set_expected(*op.expected);
      else
        req.set_expect_absent(true);
      op.invoke = o.rec->now();
      auto r = call_from<pb::WriteResponse>(rc, eps, home, req);
      op.complete = o.rec->now();
      if (r) {
        pb::KvResult res;
        res.ParseFromString(r->result());
        if (res.compare_failed()) {
          op.result = lin::outcome::fail;
          seen[op.key] = res.existed() ? std::optional<std::string>{res.previous()} : std::nullopt;
        } else {
          seen[op.key] = value;
        }
      } else {
        err = r.error();
      }
    }
    if (err) {
      op.result = definite(*err) ? lin::outcome::rejected : lin::outcome::unknown;
      o.stats->count(std::string{definite(*err) ? "rejected " : "unknown "} + error_name(*err));
    }
    o.rec->add(op);
    if (op.result == lin::outcome::unknown)
      id += o.clients;
    std::this_thread::sleep_for(ms{static_cast<int64_t>(rng() % 10)});
  }
}

// ---------------------------------------------------------------------------------------------
// The run of one seed

enum class fault { isolate, leader_minority, bridge, kill, pause, disk_full, churn };

const char* name_of(fault f) {
  switch (f) {
  case fault::isolate:
    return "isolate";
  case fault::leader_minority:
    return "leader-minority";
  case fault::bridge:
    return "bridge";
  case fault::kill:
    return "kill";
  case fault::pause:
    return "pause";
  case fault::disk_full:
    return "disk-full";
  case fault::churn:
    return "churn";
  }
  return "?";
}

struct node_proc {
  int index = 0;
  std::string id;
  std::string address;
  std::string data_dir;
  std::string log;
  pid_t pid = -1;
  bool paused = false;
  bool expect_exit = false; // its disk was filled or it was removed: an exit is no surprise
  bool removed = false;     // removed from the configuration, not back yet
  // `member remove` ended without an answer (a timeout): the removal may still commit, and the
  // node then stops with removed_member, which is no anomaly: it is wiped and joins again.
  bool remove_unknown = false;
  int starts = 0;
};

struct seed_result {
  bool ok = true;
  std::string failure;
  double seconds = 0;
  std::string dir;     // the run's directory (kept when it failed)
  std::string summary; // nodes, faults, history and checker figures
};

class nemesis_run {
public:
  nemesis_run(uint64_t seed, int seconds) : seed_(seed), rng_(seed), fault_seconds_(seconds) {}

  ~nemesis_run() { teardown(); }

  seed_result run();

private:
  // -- bookkeeping ----------------------------------------------------------------------------
  int64_t now_ns() const { return rec_.now(); }

  void log(const std::string& line) {
    auto text = fmt("%8.3f s  ", secs(now_ns())) + line;
    schedule_ << text << "\n";
    schedule_.flush();
    if (verbose_)
      std::printf("[nemesis %llu] %s\n", static_cast<unsigned long long>(seed_), text.c_str());
  }

  void check_interrupt() {
    if (interrupted)
      throw interrupted_error{};
  }

  // Sleeps `d`, noticing exits and signals on the way.
  void pause_for(ms d) {
    auto until = steady::now() + d;
    while (steady::now() < until) {
      check_interrupt();
      reap();
      std::this_thread::sleep_for(
          std::min<ms>(50ms, std::chrono::duration_cast<ms>(until - steady::now()) + 1ms));
    }
  }

  // -- nodes ----------------------------------------------------------------------------------
  std::string initial_cluster() const {
    std::string out;
    for (auto& n : nodes_)
      out += (out.empty() ? "" : ",") + n.id + "=" + n.address;
    return out;
  }

  std::vector<std::string> addresses(int except = -1) const {
    std::vector<std::string> out;
    for (auto& n : nodes_)
      if (n.index != except)
        out.push_back(n.address);
    return out;
  }

  static std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (auto& s : v)
      out += (out.empty() ? "" : ",") + s;
    return out;
  }

  enum class start_mode { initial, restart, join };

  void start(node_proc& n, start_mode mode, const std::string& why) {
    std::vector<std::string> args{bin_dir + "/cafraft-node",
                                  "--id",
                                  n.id,
                                  "--data-dir",
                                  n.data_dir,
                                  "--listen",
                                  n.address,
                                  "--insecure",
                                  "--election-min-ms",
                                  "300",
                                  "--election-max-ms",
                                  "1200",
                                  "--heartbeat-ms",
                                  "50"};
    if (mode == start_mode::initial) {
      args.push_back("--initial-cluster");
      args.push_back(initial_cluster());
    } else if (mode == start_mode::join) {
      args.push_back("--join");
      args.push_back(joined(addresses(n.index)));
    }
    {
      std::ofstream l{n.log, std::ios::app};
      l << fmt("=== nemesis %.3f s: ", secs(now_ns())) << "start " << n.id << " (" << why << ")\n";
    }
    n.pid = spawn_in(lab_->node_ns(n.index), args, n.log);
    n.paused = false;
    ++n.starts;
    if (n.pid < 0)
      throw std::runtime_error("cannot start " + n.id);
  }

  std::string last_log_line(const node_proc& n) {
    std::ifstream in{n.log};
    std::string line, last;
    while (std::getline(in, line))
      if (!line.empty())
        last = line;
    return last.size() > 300 ? last.substr(0, 300) : last;
  }

  // Notices nodes that exited; an exit nobody caused is an anomaly (restarted at the next step).
  void reap() {
    for (auto& n : nodes_) {
      if (n.pid <= 0)
        continue;
      int status = 0;
      if (::waitpid(n.pid, &status, WNOHANG) != n.pid)
        continue;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      n.pid = -1;
      n.paused = false;
      log(n.id + " exited with " + std::to_string(code) + ": " + last_log_line(n));
      if (!n.expect_exit && n.remove_unknown &&
          last_log_line(n).find("removed_member") != std::string::npos) {
        log("the removal of " + n.id + " whose outcome was unknown took effect: it joins again");
        n.remove_unknown = false;
        n.removed = true;
        std::error_code ec;
        fs::remove_all(n.data_dir, ec); // a removed node's data must not be used again
        restart_due_.insert(n.index);
      } else if (!n.expect_exit) {
        anomalies_ += n.id + " exited with " + std::to_string(code) + " unexpectedly (" +
                      last_log_line(n) + ")\n";
        restart_due_.insert(n.index);
      }
    }
  }

  // The threads' stacks of a node that hangs, when gdb is there (diagnostics only).
  void save_stacks(const node_proc& n) {
    if (::access("/usr/bin/gdb", X_OK) != 0 || n.pid <= 0)
      return;
    auto r = run_cmd(
        {"/usr/bin/gdb", "-p", std::to_string(n.pid), "-batch", "-ex", "thread apply all bt"}, 60s);
    auto file = dir_ + "/" + n.id + "-stacks-" + std::to_string(n.starts) + ".txt";
    std::ofstream{file} << r.out;
    log("saved " + n.id + "'s stacks in " + file);
  }

  void kill_node(node_proc& n) {
    if (n.pid <= 0)
      return;
    ::kill(n.pid, SIGKILL);
    wait_exit(n.pid, 10s);
    n.pid = -1;
    n.paused = false;
  }

  // Keeps every tmpfs under 4 MiB of free space, so that WAL space is never reserved ahead
  // (durable_storage's fallocate fails) and a filled disk fails the next write, and never
  // lets it fill up by itself.
  void keep_disks_small() {
    for (auto& d : disks_) {
      if (d->free_bytes() >= (1u << 20))
        continue;
      auto mb = d->used_bytes() / (1u << 20) + 3;
      if (d->resize(mb))
        log("resized " + d->dir() + " to " + std::to_string(mb) + " MiB");
    }
  }

  std::optional<pb::NodeStatus> status(const node_proc& n, ms timeout = 700ms) {
    if (n.pid <= 0 || n.paused)
      return std::nullopt;
    auto st = admin_->ask<pb::NodeStatus>(n.address, status_atom::value, timeout, timeout);
    if (!st)
      return std::nullopt;
    return *st;
  }

  // The node that says it leads in the highest term, or -1.
  int leader() {
    int best = -1;
    uint64_t term = 0;
    for (auto& n : nodes_)
      if (auto st = status(n); st && st->role() == "leader" && st->term() >= term) {
        best = n.index;
        term = st->term();
      }
    return best;
  }

  // -- faults ---------------------------------------------------------------------------------
  struct draw {
    fault kind;
    uint64_t target, shuffle, aim;
    ms duration, quiet;
  };

  draw next_draw() {
    // Every step draws the same numbers, whatever they are used for: a seed gives one schedule.
    // CAFRAFT_NEMESIS_FAULTS (names, comma-separated) keeps only some kinds.
    static const std::vector<std::pair<fault, int>> all{
        {fault::isolate, 2}, {fault::leader_minority, 2}, {fault::bridge, 2}, {fault::kill, 2},
        {fault::pause, 2},   {fault::disk_full, 1},       {fault::churn, 1}};
    std::vector<std::pair<fault, int>> weights;
    auto only = std::getenv("CAFRAFT_NEMESIS_FAULTS");
    for (auto& w : all)
      if (!only || !*only ||
          ("," + std::string{only} + ",").find("," + std::string{name_of(w.first)} + ",") !=
              std::string::npos)
        weights.push_back(w);
    if (weights.empty())
      weights = all;
    int total = 0;
    for (auto& w : weights)
      total += w.second;
    auto r = static_cast<int>(rng_() % static_cast<uint64_t>(total));
    draw d{};
    for (auto& w : weights) {
      if (r < w.second) {
        d.kind = w.first;
        break;
      }
      r -= w.second;
    }
    d.target = rng_();
    d.shuffle = rng_();
    d.aim = rng_() % 2; // 1: at the leader
    d.duration = ms{1500 + static_cast<int64_t>(rng_() % 3500)};
    d.quiet = ms{500 + static_cast<int64_t>(rng_() % 1500)};
    return d;
  }

  int pick_target(const draw& d, bool at_leader) {
    if (at_leader) {
      auto l = leader();
      if (l >= 0)
        return l;
    }
    return static_cast<int>(d.target % nodes_.size());
  }

  static std::string names(const std::vector<int>& ids) {
    std::string out = "{";
    for (auto i : ids)
      out += (out.size() > 1 ? "," : "") + std::string{"n"} + std::to_string(i + 1);
    return out + "}";
  }

  void cut_between(const std::vector<int>& a, const std::vector<int>& b, cut_set& cuts) {
    for (auto x : a)
      for (auto y : b)
        cuts.insert({std::min(x, y), std::max(x, y)});
  }

  void partition(const draw& d, const std::string& what, const std::vector<int>& a,
                 const std::vector<int>& b, const std::vector<int>& c = {}) {
    cut_set cuts;
    cut_between(a, b, cuts);
    lab_->apply(cuts);
    log(what + ": " + names(a) + " | " + names(b) +
        (c.empty() ? std::string{} : " with " + names(c) + " seeing both") + " for " +
        std::to_string(d.duration.count()) + " ms");
    ++fault_counts_[what];
    pause_for(d.duration);
    lab_->heal();
    log("healed the network");
  }

  void step(const draw& d) {
    auto n = static_cast<int>(nodes_.size());
    std::vector<int> perm(nodes_.size());
    for (int i = 0; i < n; ++i)
      perm[static_cast<size_t>(i)] = i;
    std::mt19937_64 shuffle_rng{d.shuffle};
    std::shuffle(perm.begin(), perm.end(), shuffle_rng);
    switch (d.kind) {
    case fault::isolate: {
      auto x = static_cast<int>(d.target % nodes_.size());
      std::vector<int> rest;
      for (int i = 0; i < n; ++i)
        if (i != x)
          rest.push_back(i);
      partition(d, "isolate", {x}, rest);
      break;
    }
    case fault::leader_minority: {
      auto l = leader();
      if (l < 0)
        l = perm[0];
      std::vector<int> minority{l}, majority;
      for (auto i : perm)
        if (i != l && static_cast<int>(minority.size()) < (n - 1) / 2)
          minority.push_back(i);
        else if (i != l)
          majority.push_back(i);
      partition(d, "leader-minority", minority, majority);
      break;
    }
    case fault::bridge: {
      std::vector<int> a, b;
      for (int i = 1; i < n; ++i)
        (i <= (n - 1) / 2 ? a : b).push_back(perm[static_cast<size_t>(i)]);
      partition(d, "bridge", a, b, {perm[0]});
      break;
    }
    case fault::kill: {
      auto& x = nodes_[static_cast<size_t>(pick_target(d, d.aim))];
      if (x.pid <= 0)
        break;
      kill_node(x);
      ++fault_counts_["kill"];
      log("kill -9 " + x.id + (d.aim ? " (aimed at the leader)" : "") + " for " +
          std::to_string(d.duration.count()) + " ms");
      pause_for(d.duration);
      start(x, start_mode::restart, "restart after kill -9");
      log("restarted " + x.id + " from its data directory");
      break;
    }
    case fault::pause: {
      auto& x = nodes_[static_cast<size_t>(pick_target(d, d.aim))];
      if (x.pid <= 0)
        break;
      ::kill(x.pid, SIGSTOP);
      x.paused = true;
      ++fault_counts_["pause"];
      log("SIGSTOP " + x.id + (d.aim ? " (aimed at the leader)" : "") + " for " +
          std::to_string(d.duration.count()) + " ms");
      pause_for(d.duration);
      if (x.pid > 0)
        ::kill(x.pid, SIGCONT);
      x.paused = false;
      log("SIGCONT " + x.id);
      break;
    }
    case fault::disk_full: {
      auto& x = nodes_[static_cast<size_t>(pick_target(d, d.aim))];
      if (x.pid <= 0)
        break;
      auto& disk = *disks_[static_cast<size_t>(x.index)];
      x.expect_exit = true;
      auto bytes = disk.fill();
      ++fault_counts_["disk-full"];
      log("filled " + x.id + "'s disk" + (d.aim ? " (aimed at the leader)" : "") + " (" +
          std::to_string(bytes) + " bytes) for " + std::to_string(d.duration.count()) + " ms");
      pause_for(d.duration);
      disk.unfill();
      x.expect_exit = false;
      if (x.pid > 0 && !status(x, 1500ms)) {
        // Running, but its node does not answer: it stopped and the process did not end.
        anomalies_ += x.id + " still runs " + std::to_string(d.duration.count()) +
                      " ms after its disk filled, but its node does not answer (" +
                      last_log_line(x) + ")\n";
        log(x.id + " still runs but does not answer: " + last_log_line(x));
        save_stacks(x);
        kill_node(x);
        start(x, start_mode::restart, "restart after a full disk (killed: it did not exit)");
        log("gave " + x.id + "'s disk its space back, killed and restarted it");
      } else if (x.pid > 0) {
        log("gave " + x.id + "'s disk its space back (it still runs and answers)");
      } else {
        ++disk_full_stops_;
        start(x, start_mode::restart, "restart after a full disk");
        log("gave " + x.id + "'s disk its space back and restarted it");
      }
      break;
    }
    case fault::churn:
      churn(nodes_[static_cast<size_t>(d.target % nodes_.size())]);
      break;
    }
  }

  // cafraftctl member remove, wipe, --join; waits (bounded) for the node to be a voter again.
  void churn(node_proc& x) {
    if (x.pid <= 0)
      return;
    ++fault_counts_["churn"];
    x.expect_exit = true;
    auto r = run_cmd({bin_dir + "/cafraftctl", "--endpoints", joined(addresses(x.index)),
                      "--timeout-ms", "10000", "member", "remove", x.id},
                     20s);
    auto out = r.out;
    std::replace(out.begin(), out.end(), '\n', ' ');
    log("cafraftctl member remove " + x.id + ": exit " + std::to_string(r.code) + ": " + out);
    if (r.code != 0) {
      x.expect_exit = false;
      x.remove_unknown = true; // a timeout: the removal may yet commit
      return;
    }
    x.remove_unknown = false;
    x.removed = true;
    auto until = steady::now() + 10s;
    while (x.pid > 0 && steady::now() < until)
      pause_for(50ms);
    if (x.pid > 0) {
      log(x.id + " did not stop by itself within 10 s of its removal: kill -9");
      kill_node(x);
    }
    x.expect_exit = false;
    rejoin(x);
  }

  void rejoin(node_proc& x) {
    std::error_code ec;
    fs::remove_all(x.data_dir, ec);
    start(x, start_mode::join, "join again with an empty data directory");
    log("wiped " + x.id + "'s data directory; it joins again with --join");
    auto until = steady::now() + 20s;
    while (steady::now() < until) {
      pause_for(200ms);
      auto l = leader();
      if (l < 0)
        continue;
      auto st = status(nodes_[static_cast<size_t>(l)]);
      if (!st)
        continue;
      for (auto& m : st->members())
        if (m.id() == x.id && !m.learner()) {
          x.removed = false;
          log(x.id + " is a voter again");
          return;
        }
    }
    log(x.id + " is not a voter 20 s after it started to join");
  }

  // -- the end --------------------------------------------------------------------------------
  void heal_all() {
    lab_->heal();
    for (auto& n : nodes_) {
      if (n.paused && n.pid > 0)
        ::kill(n.pid, SIGCONT);
      n.paused = false;
    }
    for (auto& d : disks_)
      d->unfill();
    reap();
    for (auto& n : nodes_) {
      if (n.pid > 0)
        continue;
      if (n.removed) {
        rejoin(n);
      } else {
        start(n, start_mode::restart, "restart to heal");
        log("restarted " + n.id + " to heal");
      }
    }
    restart_due_.clear();
  }

  // Waits for a leader whose configuration has every node as a voter.
  bool wait_healthy(ms limit) {
    auto until = steady::now() + limit;
    while (steady::now() < until) {
      pause_for(200ms);
      auto l = leader();
      if (l < 0)
        continue;
      auto st = status(nodes_[static_cast<size_t>(l)]);
      if (!st)
        continue;
      size_t voters = 0;
      for (auto& m : st->members())
        voters += !m.learner();
      if (voters == nodes_.size() && static_cast<size_t>(st->members_size()) == nodes_.size()) {
        log("healthy: " + nodes_[static_cast<size_t>(l)].id + " leads term " +
            std::to_string(st->term()) + " with every node a voter");
        return true;
      }
    }
    return false;
  }

  std::string final_checks(std::vector<lin::operation>& history);
  void write_files(const std::vector<lin::operation>& history);
  void teardown();

  uint64_t seed_;
  std::mt19937_64 rng_;
  int fault_seconds_;
  bool verbose_ = env_u64("CAFRAFT_NEMESIS_VERBOSE", 0) != 0;
  std::string dir_;
  std::ofstream schedule_;
  recorder rec_;
  std::unique_ptr<netlab> lab_;
  std::vector<std::unique_ptr<small_tmpfs>> disks_;
  std::vector<node_proc> nodes_;
  std::unique_ptr<test::network_test_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<remote_client> admin_;
  std::vector<std::string> keys_;
  std::string anomalies_;
  std::set<int> restart_due_;
  std::map<std::string, int> fault_counts_;
  int disk_full_stops_ = 0;
  client_stats stats_;
  std::string summary_;
  bool failed_ = false;
  bool torn_down_ = false;
};

seed_result nemesis_run::run() {
  seed_result res;
  auto t0 = steady::now();
  // The run's directory: node logs, data directories (each on its own small tmpfs), the
  // schedule and the history.
  auto tmpl = (fs::temp_directory_path() / ("cafraft-nemesis-" + std::to_string(::getpid()) + "-s" +
                                            std::to_string(seed_) + "-XXXXXX"))
                  .string();
  if (!::mkdtemp(tmpl.data())) {
    res.ok = false;
    res.failure = "cannot make a directory under " + fs::temp_directory_path().string();
    return res;
  }
  dir_ = tmpl;
  schedule_.open(dir_ + "/schedule.txt");
  auto n = static_cast<int>(env_u64("CAFRAFT_NEMESIS_NODES", rng_() % 2 ? 5 : 3));
  if (n != 3 && n != 5)
    n = 5;
  log("seed " + std::to_string(seed_) + ": " + std::to_string(n) + " nodes, " +
      std::to_string(fault_seconds_) + " s of faults, directory " + dir_);
  try {
    lab_ = std::make_unique<netlab>(n);
    log("namespaces " + lab_->prefix() + "-{hub,n1..n" + std::to_string(n) +
        ",c}, bridge in the hub namespace, nodes at 10.78.0.1-" + std::to_string(n) + ":" +
        std::to_string(node_port) + ", clients at " + netlab::client_ip());
    for (int i = 0; i < n; ++i) {
      node_proc p;
      p.index = i;
      p.id = "n" + std::to_string(i + 1);
      p.address = netlab::node_ip(i) + ":" + std::to_string(node_port);
      disks_.push_back(std::make_unique<small_tmpfs>(dir_ + "/disk-" + p.id, 3));
      p.data_dir = disks_.back()->dir() + "/data";
      p.log = dir_ + "/" + p.id + ".log";
      nodes_.push_back(p);
    }
    for (auto& p : nodes_)
      start(p, start_mode::initial, "initial cluster");
    // This thread (and every thread it starts from now on: CAF's, the clients') talks from the
    // clients' namespace; the nodes are started into their own.
    lab_->enter_client_ns();
    cfg_ = std::make_unique<test::network_test_config>();
    sys_ = std::make_unique<caf::actor_system>(*cfg_);
    admin_ = std::make_unique<remote_client>(*sys_, addresses(), tls_files{}, 3s);
    if (!wait_healthy(20s))
      throw std::runtime_error("no leader within 20 s of the start");
    for (int k = 0; k < 8; ++k)
      keys_.push_back("k" + std::to_string(k));
    // Clients.
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    constexpr int client_count = 5;
    auto fault_end = steady::now() + std::chrono::seconds{fault_seconds_};
    for (int c = 0; c < client_count; ++c) {
      client_options o;
      o.sys = sys_.get();
      o.endpoints = addresses();
      o.keys = keys_;
      o.rec = &rec_;
      o.stats = &stats_;
      o.stop = &stop;
      o.hard_stop = fault_end + 120s;
      o.seed = seed_;
      o.index = c;
      o.clients = client_count;
      clients.emplace_back(client_main, o);
    }
    struct joiner {
      std::atomic<bool>& stop;
      std::vector<std::thread>& threads;
      ~joiner() {
        stop = true;
        for (auto& t : threads)
          if (t.joinable())
            t.join();
      }
    } join_clients{stop, clients};
    pause_for(1s);
    // The nemesis.
    int steps = 0;
    while (steady::now() < fault_end && steps < 1000) {
      auto d = next_draw();
      ++steps;
      if (steady::now() + d.duration > fault_end)
        break;
      keep_disks_small();
      for (auto i : restart_due_) {
        auto& x = nodes_[static_cast<size_t>(i)];
        if (x.pid <= 0) {
          start(x, x.removed ? start_mode::join : start_mode::restart, "restart after its exit");
          log("restarted " + x.id + " after its unexpected exit");
        }
      }
      restart_due_.clear();
      step(d);
      pause_for(d.quiet);
    }
    log("faults over; healing everything");
    heal_all();
    bool healthy = wait_healthy(30s);
    pause_for(2s); // the clients go on against the healed cluster
    stop = true;
    for (auto& t : clients)
      t.join();
    log("clients stopped");
    auto history = rec_.operations();
    std::string problems;
    if (!healthy)
      problems += "no leader with every node a voter within 30 s of healing\n";
    else
      problems += final_checks(history);
    if (!anomalies_.empty())
      problems += "unexpected node exits:\n" + anomalies_;
    write_files(history);
    res.ok = problems.empty();
    res.failure = problems;
    std::string faults;
    for (auto& [what, count] : fault_counts_)
      faults += (faults.empty() ? "" : ", ") + what + " " + std::to_string(count);
    res.summary = std::to_string(n) + " nodes; faults: " + (faults.empty() ? "none" : faults) +
                  " (" + std::to_string(disk_full_stops_) + " nodes stopped on a full disk); " +
                  summary_;
  } catch (const interrupted_error& e) {
    res.ok = false;
    res.failure = e.what();
  } catch (const std::exception& e) {
    res.ok = false;
    res.failure = std::string{"the run stopped: "} + e.what();
    log(res.failure);
  }
  failed_ = !res.ok;
  res.dir = dir_;
  teardown();
  res.seconds = std::chrono::duration<double>(steady::now() - t0).count();
  return res;
}

// After healing: a final write applied everywhere, every key read back from every node, and the
// history (with those reads) checked.
std::string nemesis_run::final_checks(std::vector<lin::operation>& history) {
  std::string problems;
  const std::string final_key = "final";
  const std::string final_value = "final-" + std::to_string(seed_);
  remote_client writer{*sys_, addresses(), tls_files{}, 5s};
  bool written = false;
  auto until = steady::now() + 30s;
  for (int attempt = 0; !written && steady::now() < until && attempt < 50; ++attempt) {
    check_interrupt();
    lin::operation op;
    op.client = 1000 + attempt;
    op.key = final_key;
    op.kind = lin::op_kind::write;
    op.value = final_value + "-" + std::to_string(attempt);
    pb::PutRequest req;
    req.set_key(final_key);
    req.set_value(op.value);
    op.invoke = rec_.now();
    auto r = writer.call<pb::WriteResponse>(req);
    op.complete = rec_.now();
    if (r) {
      written = true;
      log("final write " + op.value + " committed at index " + std::to_string(r->index()));
    } else {
      op.result = definite(r.error()) ? lin::outcome::rejected : lin::outcome::unknown;
      log("final write: " + render(r.error()));
      pause_for(200ms);
    }
    history.push_back(op);
  }
  if (!written)
    return "the final write did not succeed within 30 s of healing\n";
  auto expected_final = history.back().value;
  // Every key any operation touched: the contended ones and the keys of their own.
  std::set<std::string> all_keys(keys_.begin(), keys_.end());
  for (auto& op : history)
    if (op.key != final_key)
      all_keys.insert(op.key);
  std::vector<std::string> key_list(all_keys.begin(), all_keys.end());
  // Every node applies it (stale reads: each node answers from its own state), then is read
  // whole, in batches of stale reads.
  std::map<std::string, std::map<std::string, std::optional<std::string>>> finals; // node, key
  for (auto& n : nodes_) {
    remote_client reader{*sys_, {}};
    bool caught_up = false;
    auto deadline = steady::now() + 30s;
    while (!caught_up && steady::now() < deadline) {
      check_interrupt();
      pb::GetRequest req;
      req.set_key(final_key);
      req.set_stale(true);
      auto r = reader.ask<pb::GetResponse>(n.address, req, 1s, 1s);
      caught_up = r && r->found() && r->value() == expected_final;
      if (!caught_up)
        pause_for(100ms);
    }
    if (!caught_up) {
      problems += n.id + " did not apply the final write within 30 s\n";
      continue;
    }
    constexpr size_t per_batch = 2000;
    for (size_t first = 0; first < key_list.size(); first += per_batch) {
      pb::BatchRequest batch;
      auto last = std::min(key_list.size(), first + per_batch);
      for (size_t i = first; i < last; ++i) {
        auto* get = batch.add_items()->mutable_get();
        get->set_key(key_list[i]);
        get->set_stale(true);
      }
      auto invoke = rec_.now();
      auto r = reader.ask<pb::BatchResponse>(n.address, batch, 10s, 1s);
      auto complete = rec_.now();
      if (!r || static_cast<size_t>(r->results_size()) != last - first) {
        problems += n.id + " did not answer a batch of stale reads: " +
                    (r ? std::string{"wrong size"} : render(r.error())) + "\n";
        break;
      }
      for (size_t i = first; i < last; ++i) {
        auto& res = r->results(static_cast<int>(i - first));
        if (!res.has_get()) {
          problems += n.id + " did not answer a stale read of " + key_list[i] + "\n";
          continue;
        }
        lin::operation op;
        op.client = 2000 + n.index;
        op.key = key_list[i];
        op.kind = lin::op_kind::read;
        op.invoke = invoke;
        op.complete = complete;
        if (res.get().found())
          op.read_value = res.get().value();
        finals[n.id][op.key] = op.read_value;
        history.push_back(op);
      }
    }
  }
  // Every node holds the same values, and each is allowed by the history.
  std::map<std::string, std::vector<const lin::operation*>> by_key;
  size_t acknowledged = 0;
  for (auto& op : history) {
    by_key[op.key].push_back(&op);
    acknowledged += acknowledged_write(op);
  }
  size_t disagreements = 0, wrong = 0;
  for (auto& k : key_list) {
    std::set<std::optional<std::string>> values;
    for (auto& [id, kv] : finals)
      if (auto it = kv.find(k); it != kv.end())
        values.insert(it->second);
    if (values.size() > 1 && ++disagreements <= 20) {
      problems += "the nodes disagree on " + k + ":";
      for (auto& [id, kv] : finals)
        problems += " " + id + "=" + (kv[k] ? *kv[k] : std::string{"(absent)"});
      problems += "\n";
    }
    for (auto& v : values)
      if (auto p = check_final_value(by_key[k], k, v); !p.empty() && ++wrong <= 20)
        problems += p;
  }
  if (disagreements > 20 || wrong > 20)
    problems += std::to_string(disagreements) + " keys the nodes disagree on, " +
                std::to_string(wrong) + " final values the history does not allow (20 shown)\n";
  log("final values of " + std::to_string(key_list.size()) + " keys read from " +
      std::to_string(finals.size()) + " nodes; " + std::to_string(acknowledged) +
      " acknowledged writes in the history");
  // Linearizability, key by key. A read whose outcome is unknown constrains nothing and changes
  // nothing: it is left out, which keeps the search small.
  std::vector<lin::operation> checked;
  for (auto& op : history)
    if (!(op.kind == lin::op_kind::read && op.result == lin::outcome::unknown))
      checked.push_back(op);
  lin::check_options opts;
  opts.timeout = 60s;
  auto c0 = steady::now();
  auto answer = lin::check(checked, opts);
  auto took = std::chrono::duration<double>(steady::now() - c0).count();
  std::map<lin::outcome, size_t> by;
  for (auto& op : history)
    ++by[op.result];
  summary_ = std::to_string(history.size()) + " operations (ok " +
             std::to_string(by[lin::outcome::ok]) + ", fail " +
             std::to_string(by[lin::outcome::fail]) + ", rejected " +
             std::to_string(by[lin::outcome::rejected]) + ", unknown " +
             std::to_string(by[lin::outcome::unknown]) + "), " + std::to_string(acknowledged) +
             " acknowledged writes; checked " + std::to_string(answer.operations) +
             " operations on " + std::to_string(answer.keys) + " keys in " + fmt("%.2f s", took) +
             " (" + std::to_string(answer.states) + " states): ";
  switch (answer.answer) {
  case lin::verdict::linearizable:
    summary_ += "linearizable";
    break;
  case lin::verdict::not_linearizable:
    summary_ += "NOT linearizable";
    problems +=
        "the history is not linearizable (key " + answer.key + "):\n" + answer.explanation + "\n";
    break;
  case lin::verdict::timed_out:
    summary_ += "the check timed out";
    problems += "the linearizability check timed out after 60 s (key " + answer.key + ")\n";
    break;
  }
  log(summary_);
  return problems;
}

void nemesis_run::write_files(const std::vector<lin::operation>& history) {
  // The checker's saved-history format: cafraft-lincheck history.txt checks it again.
  std::ofstream out{dir_ + "/history.txt"};
  out << "# seed " << seed_ << ": " << history.size()
      << " operations of the clients (ids 0-999; a new id after each unknown outcome), the "
         "final write (1000+) and the final stale reads of every node (2000+node)\n";
  lin::write_history(out, history);
  std::ofstream errs{dir_ + "/client-errors.txt"};
  for (auto& [what, count] : stats_.errors)
    errs << count << " " << what << "\n";
}

void nemesis_run::teardown() {
  if (torn_down_)
    return;
  torn_down_ = true;
  admin_.reset();
  sys_.reset();
  cfg_.reset();
  for (auto& n : nodes_) {
    if (n.pid > 0) {
      ::kill(n.pid, SIGKILL);
      wait_exit(n.pid, 10s);
      n.pid = -1;
    }
  }
  // A failed run keeps the data directories too (copied off their tmpfs).
  for (auto& d : disks_) {
    if (failed_) {
      std::error_code ec;
      fs::copy(d->dir(), d->dir() + "-copy", fs::copy_options::recursive, ec);
    }
    d->unmount();
  }
  disks_.clear();
  if (lab_) {
    auto left = lab_->destroy();
    if (!left.empty()) {
      failed_ = true;
      std::printf("[nemesis] could not remove everything: %s\n", left.c_str());
    }
    lab_.reset();
  }
  schedule_.close();
  if (!failed_ && !env_u64("CAFRAFT_NEMESIS_KEEP", 0) && !dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

// ---------------------------------------------------------------------------------------------

class Nemesis : public ::testing::TestWithParam<int> {
protected:
  void SetUp() override {
    get_logger("cafraft-client")->set_level(spdlog::level::off);
    for (auto v : {"CAFRAFT_ID", "CAFRAFT_DATA_DIR", "CAFRAFT_LISTEN", "CAFRAFT_INITIAL_CLUSTER",
                   "CAFRAFT_JOIN", "CAFRAFT_CLUSTER_ID", "CAFRAFT_TLS_CERT", "CAFRAFT_TLS_KEY",
                   "CAFRAFT_TLS_CA", "CAFRAFT_INSECURE", "CAFRAFT_ENDPOINTS", "CAFRAFT_LOG_LEVEL"})
      ::unsetenv(v);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  void TearDown() override {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  struct sigaction old_int_ {
  }, old_term_{};
};

TEST_P(Nemesis, Schedule) {
  auto seeds = seeds_for(GetParam());
  if (seeds.empty())
    GTEST_SKIP() << "no seed for this test (CAFRAFT_NEMESIS_SEED names one seed, run by the "
                    "first test)";
  ASSERT_EQ(::geteuid(), 0u)
      << "the nemesis tier needs root: it makes network namespaces, a bridge, nft rules and "
         "tmpfs mounts. Run it as root (CI does): sudo ctest -L nemesis";
  ASSERT_EQ(run_cmd({"nft", "--version"}).code, 0)
      << "nft is missing: apt-get install -y nftables (scripts/deps lists it)";
  ASSERT_EQ(run_cmd({"ip", "netns", "list"}).code, 0) << "ip (iproute2) does not work";
  for (auto& line : sweep_leftovers(::getpid()))
    std::printf("[nemesis] leftover of an earlier run: %s\n", line.c_str());
  auto seconds = static_cast<int>(env_u64("CAFRAFT_NEMESIS_SECONDS", 55));
  // What else a replay must set to run the same schedule.
  std::string seconds_env;
  for (auto v : {"CAFRAFT_NEMESIS_SECONDS", "CAFRAFT_NEMESIS_NODES", "CAFRAFT_NEMESIS_FAULTS"})
    if (auto x = std::getenv(v); x && *x)
      seconds_env += std::string{" "} + v + "=" + x;
  for (auto seed : seeds) {
    ASSERT_EQ(interrupted.load(), 0) << "interrupted";
    nemesis_run r{seed, seconds};
    auto res = r.run();
    auto left = namespaces_with_prefix("cfn" + std::to_string(::getpid()) + "r");
    EXPECT_TRUE(left.empty()) << "namespaces left behind: " << left.size();
    std::printf("[nemesis] seed %llu: %s in %.1f s: %s\n", static_cast<unsigned long long>(seed),
                res.ok ? "passed" : "FAILED", res.seconds, res.summary.c_str());
    if (!res.ok) {
      std::ifstream schedule{res.dir + "/schedule.txt"};
      std::printf("[nemesis] seed %llu: the schedule\n%s", static_cast<unsigned long long>(seed),
                  std::string{std::istreambuf_iterator<char>{schedule}, {}}.c_str());
      std::printf("[nemesis] seed %llu: kept %s (n*.log: the nodes' logs; schedule.txt: what "
                  "the nemesis did; history.txt: the clients' operations; disk-n*-copy: the "
                  "data directories)\n"
                  "[nemesis] replay it: CAFRAFT_NEMESIS_SEED=%llu%s ctest --test-dir %s -L "
                  "nemesis --output-on-failure\n"
                  "[nemesis]        or: CAFRAFT_NEMESIS_SEED=%llu%s %s/cafraft-nemesis-tests\n",
                  static_cast<unsigned long long>(seed), res.dir.c_str(),
                  static_cast<unsigned long long>(seed), seconds_env.c_str(), build_dir.c_str(),
                  static_cast<unsigned long long>(seed), seconds_env.c_str(), bin_dir.c_str());
    }
    std::fflush(stdout);
    EXPECT_TRUE(res.ok) << "seed " << seed << ":\n" << res.failure;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, Nemesis, ::testing::Range(0, slots));

} // namespace
} // namespace cafraft::nemesis

// A guardian: the tests run in a child process; whatever way it ends (a crash included), the
// parent removes the namespaces and mounts it left. ^C and SIGTERM are passed on to it.
namespace {
pid_t guarded_child = 0;
extern "C" void forward_signal(int sig) {
  if (guarded_child > 0)
    ::kill(guarded_child, sig);
}
} // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::testing::GTEST_FLAG(list_tests) || std::getenv("CAFRAFT_NEMESIS_UNGUARDED"))
    return RUN_ALL_TESTS();
  std::fflush(stdout);
  guarded_child = ::fork();
  if (guarded_child == 0)
    return RUN_ALL_TESTS();
  if (guarded_child < 0)
    return RUN_ALL_TESTS();
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  int status = 0;
  while (::waitpid(guarded_child, &status, 0) < 0 && errno == EINTR) {
  }
  for (auto& line : cafraft::nemesis::sweep_leftovers(guarded_child))
    std::printf("[nemesis] removed what the test process left: %s\n", line.c_str());
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  std::printf("[nemesis] the test process died of signal %d\n", WTERMSIG(status));
  return 128 + WTERMSIG(status);
}
