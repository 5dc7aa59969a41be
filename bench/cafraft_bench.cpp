// cafraft-bench: closed-loop load against a cafraft cluster (docs/performance.md).
//
//   cafraft-bench --endpoints HOST:PORT,...   a running cluster, over CAF networking
//   cafraft-bench --spawn 3                   three nodes in this process: the clients are
//                                             actors beside the leader (no network hop)
//   cafraft-bench --spawn 3 --processes       three cafraft-node processes on 127.0.0.1
//
// Every client keeps --inflight requests outstanding and sends the next as soon as one is
// answered. Writes are durable (fsync) unless --memory. It reports ops/s, MB/s, latency
// percentiles from a histogram, and CPU seconds per 1000 operations; -w json for scripts.
// --failover-trials N (with --processes) kills the leader with SIGKILL under load N times and
// reports the time until the next write succeeds. --inspect-every MS does what an attached
// cafraft-console's `top` does (the actor directory and an inspection of every actor of every
// node) every MS milliseconds, to measure what being watched costs.
//
// Exit codes: 0 done, 1 usage, 2 the run failed (no leader, no operation succeeded), 3 an
// endpoint cannot be reached.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/batcher.hpp"
#include "actors/node.hpp"
#include "actors/remote_client.hpp"
#include "apps/network.hpp"
#include "apps/subprocess.hpp"
#include "bench/histogram.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"
#include "runtime/storage.hpp"

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;
using steady = std::chrono::steady_clock;
namespace pb = cafraft::pb;

namespace {

using start_atom = caf::atom_constant<caf::atom("bstart")>;
using issue_atom = caf::atom_constant<caf::atom("bissue")>;
using finish_atom = caf::atom_constant<caf::atom("bfinish")>;
using probe_atom = caf::atom_constant<caf::atom("bprobe")>;
using sweep_atom = caf::atom_constant<caf::atom("bsweep")>;

struct options {
  std::string endpoints;
  int spawn = 0;
  bool processes = false;
  bool memory = false;
  std::string data_dir;
  int clients = 1;
  int inflight = 1;
  int value_size = 256;
  int keys = 1000;
  double duration = 10;
  double warmup = 2;
  std::string ops = "put";
  std::string format = "table";
  int connections = 0; // 0: min(clients, 8) over the network, 1 in-process
  int batch = 0;       // batches in flight per connection and node; 0: no batching
  int timeout_ms = 2000;
  int failover_trials = 0;
  int inspect_every_ms = 0;
  std::string scheduler = "sharing";
  int threads = 1; // 0: CAF's default
  std::string log_level = "warn";
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

// What every client reads (set before the run) and the counters the progress line reads.
struct run_shared {
  std::vector<std::string> addresses;           // round robin
  std::map<std::string, caf::actor> by_address; // where a not_leader hint points
  enum { puts, gets, mixed } mix = puts;
  std::string value;
  int keys = 1000;
  int inflight = 1;
  std::chrono::milliseconds timeout{2000};
  caf::actor batcher;          // with --batch: the requests go through it
  int64_t measure_from_ns = 0; // warmup ends
  std::atomic<int64_t> stop_at_ns{INT64_MAX};
  std::atomic<uint64_t> ops{0}, errors{0};
};

// What one client measured; read by the main thread once the client finished.
struct client_result {
  cafraft::bench::histogram latency;
  uint64_t ops = 0, errors = 0, bytes = 0;
  std::map<std::string, uint64_t> error_kinds; // errors by code
};

// The code of an error, as the report counts it: "connection_lost", "request_timeout", ...
std::string error_kind(const caf::error& e) {
  if (e.category() == cafraft::error_category)
    return cafraft::to_string(static_cast<cafraft::errc>(e.code()));
  if (e.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(e.code()));
  return "other";
}

struct client_state {
  std::shared_ptr<run_shared> run;
  std::shared_ptr<client_result> result;
  size_t next = 0; // round robin over run->addresses
  caf::actor target;
  std::mt19937_64 rng;
  int inflight = 0;
  // The requests not answered yet, by number, with when each was sent. A request carries no
  // timeout of its own (in CAF 0.17 each one is two hand-offs to the clock thread, which cost
  // this tool a tenth of the machine at 1000 clients); sweep() gives up on the late ones.
  uint64_t next_request = 0;
  struct pending {
    int64_t sent;
    caf::actor_addr via; // the dialer it went through (or the batcher)
  };
  std::map<uint64_t, pending> outstanding;
  bool sweeping = false;
  caf::response_promise finished;
  static inline const char* name = "bench.client";
};

using client_ptr = caf::stateful_actor<client_state>*;

void issue(client_ptr self);

// Counts a request that ended (`error` empty when it succeeded) and issues the next one.
void completed(client_ptr self, int64_t sent, size_t bytes, const caf::error& error = {}) {
  bool ok = !error;
  auto& st = self->state;
  auto done = now_ns();
  auto& run = *st.run;
  if (sent >= run.measure_from_ns && done <= run.stop_at_ns.load(std::memory_order_relaxed)) {
    if (ok) {
      st.result->latency.record(static_cast<uint64_t>(done - sent));
      ++st.result->ops;
      st.result->bytes += bytes;
      run.ops.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++st.result->errors;
      ++st.result->error_kinds[error_kind(error)];
      run.errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  --st.inflight;
  if (done < run.stop_at_ns.load(std::memory_order_relaxed)) {
    if (ok)
      issue(self);
    else // no leader yet, or a timeout: try again a little later, perhaps elsewhere
      self->delayed_send(self, 5ms, issue_atom::value);
    ++st.inflight;
    return;
  }
  if (st.inflight == 0 && st.finished.pending())
    st.finished.deliver(true);
}

void failed(client_ptr self, const caf::error& e) {
  auto& st = self->state;
  std::string id, address;
  auto& run = *st.run;
  if (cafraft::leader_hint(e, id, address) && run.by_address.count(address) > 0) {
    st.target = run.by_address[address];
    return;
  }
  st.next = (st.next + 1) % run.addresses.size();
  st.target = run.by_address[run.addresses[st.next]];
}

// Answers that come after sweep() gave up on their request are dropped.
template <class Response, class Request>
void await(client_ptr self, Request request, int64_t sent, size_t bytes) {
  auto& st = self->state;
  auto n = st.next_request++;
  auto& batcher = st.run->batcher;
  st.outstanding.emplace(n, client_state::pending{sent, (batcher ? batcher : st.target).address()});
  auto msg = batcher ? caf::make_message(cafraft::batch_atom::value, st.target, std::move(request))
                     : caf::make_message(std::move(request));
  self->request(batcher ? batcher : st.target, caf::infinite, std::move(msg))
      .then(
          [self, n, sent, bytes](const Response& r) {
            if (self->state.outstanding.erase(n) == 0)
              return;
            size_t got = bytes;
            if constexpr (std::is_same_v<Response, pb::GetResponse>)
              got += r.value().size();
            completed(self, sent, got);
          },
          [self, n, sent](caf::error& e) {
            if (self->state.outstanding.erase(n) == 0)
              return;
            failed(self, e);
            completed(self, sent, 0, e);
          });
}

// A dialer's connection broke: the requests that went through it fail now, as the batcher
// fails its own (actors/batcher.hpp), instead of at the timeout.
void lost(client_ptr self, const caf::actor& via) {
  auto& st = self->state;
  std::vector<int64_t> gone;
  for (auto i = st.outstanding.begin(); i != st.outstanding.end();) {
    if (i->second.via != via.address()) {
      ++i;
      continue;
    }
    gone.push_back(i->second.sent);
    i = st.outstanding.erase(i);
  }
  auto e = make_error(cafraft::errc::connection_lost);
  for (auto sent : gone) {
    failed(self, e);
    completed(self, sent, 0, e);
  }
}

// Every tenth of the timeout: requests older than the timeout fail, as a timeout would.
void sweep(client_ptr self) {
  auto& st = self->state;
  auto deadline = now_ns() - std::chrono::nanoseconds{st.run->timeout}.count();
  std::vector<int64_t> late;
  for (auto i = st.outstanding.begin(); i != st.outstanding.end();) {
    if (i->second.sent > deadline) {
      ++i;
      continue;
    }
    late.push_back(i->second.sent);
    i = st.outstanding.erase(i);
  }
  auto e = make_error(caf::sec::request_timeout);
  for (auto sent : late) {
    failed(self, e);
    completed(self, sent, 0, e);
  }
  st.sweeping = !st.outstanding.empty() || st.inflight > 0;
  if (st.sweeping)
    self->delayed_send(self, std::max(st.run->timeout / 10, std::chrono::milliseconds{1}),
                       sweep_atom::value);
}

void issue(client_ptr self) {
  auto& st = self->state;
  auto& run = *st.run;
  auto key = "key-" + std::to_string(st.rng() % static_cast<uint64_t>(run.keys));
  bool write = run.mix == run_shared::puts || (run.mix == run_shared::mixed && (st.rng() & 1));
  auto sent = now_ns();
  auto bytes = key.size() + (write ? run.value.size() : 0);
  if (write) {
    pb::PutRequest req;
    req.set_key(std::move(key));
    req.set_value(run.value);
    await<pb::WriteResponse>(self, std::move(req), sent, bytes);
  } else {
    pb::GetRequest req;
    req.set_key(std::move(key));
    await<pb::GetResponse>(self, std::move(req), sent, bytes);
  }
  if (!st.sweeping) {
    st.sweeping = true;
    self->delayed_send(self, std::max(run.timeout / 10, std::chrono::milliseconds{1}),
                       sweep_atom::value);
  }
}

caf::behavior client_impl(client_ptr self, std::shared_ptr<run_shared> run,
                          std::shared_ptr<client_result> result, size_t index) {
  auto& st = self->state;
  st.run = std::move(run);
  st.result = std::move(result);
  st.rng.seed(index * 7919 + 1);
  st.next = index % st.run->addresses.size();
  st.target = st.run->by_address[st.run->addresses[st.next]];
  return {
      [self](start_atom) {
        auto& s = self->state;
        if (!s.run->batcher) // the batcher watches the dialers itself
          for (auto& [address, dialer] : s.run->by_address)
            self->send(dialer, cafraft::connection_watch_atom::value);
        for (int i = 0; i < s.run->inflight; ++i) {
          ++s.inflight;
          issue(self);
        }
      },
      [self](issue_atom) {
        auto& s = self->state;
        if (now_ns() < s.run->stop_at_ns.load(std::memory_order_relaxed)) {
          issue(self);
          return;
        }
        if (--s.inflight == 0 && s.finished.pending())
          s.finished.deliver(true);
      },
      [self](sweep_atom) { sweep(self); },
      [self](cafraft::connection_lost_atom, const caf::actor& via) { lost(self, via); },
      [self](finish_atom) {
        auto& s = self->state;
        s.finished = self->make_response_promise();
        if (s.inflight == 0)
          s.finished.deliver(true);
        return s.finished;
      },
  };
}

// ----- clusters -----------------------------------------------------------------------------

double cpu_seconds_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest{text.substr(close + 2)};
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15)
      stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Peak resident memory of process `pid` in MB (VmHWM), 0 when unknown.
double peak_rss_mb_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0; // kB
  return 0;
}

// cafraft-node processes on 127.0.0.1 (--spawn N --processes).
class process_cluster {
public:
  process_cluster(int n, const std::string& root) : root_(root) {
    auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "cafraft-node";
    node_bin_ = exe.string();
    for (int i = 1; i <= n; ++i) {
      auto id = "n" + std::to_string(i);
      ids_.push_back(id);
      addresses_[id] = "127.0.0.1:" + std::to_string(cafraft::free_loopback_port());
    }
    for (auto& id : ids_)
      initial_ += (initial_.empty() ? "" : ",") + id + "=" + addresses_[id];
    for (auto& id : ids_)
      start(id);
  }
  ~process_cluster() {
    for (auto& [id, pid] : pids_)
      if (pid > 0) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
      }
  }
  process_cluster(const process_cluster&) = delete;
  process_cluster& operator=(const process_cluster&) = delete;

  void start(const std::string& id) {
    auto log = root_ + "/" + id + ".log";
    std::vector<std::string> args{node_bin_,
                                  "--id",
                                  id,
                                  "--data-dir",
                                  root_ + "/" + id,
                                  "--listen",
                                  addresses_[id],
                                  "--initial-cluster",
                                  initial_,
                                  "--insecure",
                                  "--log-level",
                                  "warn"};
    pids_[id] = cafraft::start_process(args, log);
  }

  void kill(const std::string& id) {
    auto pid = pids_[id];
    if (pid <= 0)
      return;
    cpu_of_dead_ += cpu_seconds_of(pid);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pids_[id] = 0;
  }

  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (auto& id : ids_)
      out.push_back(addresses_.at(id));
    return out;
  }
  std::string id_at(const std::string& address) const {
    for (auto& [id, a] : addresses_)
      if (a == address)
        return id;
    return {};
  }
  /// The largest peak resident memory of the running nodes, in MB.
  double peak_rss_mb() const {
    double most = 0;
    for (auto& [id, pid] : pids_)
      if (pid > 0)
        most = std::max(most, peak_rss_mb_of(pid));
    return most;
  }
  double cpu_seconds() const {
    double sum = cpu_of_dead_;
    for (auto& [id, pid] : pids_)
      if (pid > 0)
        sum += cpu_seconds_of(pid);
    return sum;
  }

private:
  std::string root_, node_bin_, initial_;
  std::vector<std::string> ids_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, pid_t> pids_;
  double cpu_of_dead_ = 0;
};

// ----- the run --------------------------------------------------------------------------------

struct report {
  uint64_t ops = 0, errors = 0, bytes = 0;
  std::map<std::string, uint64_t> error_kinds;
  double seconds = 0;
  cafraft::bench::histogram latency;
  double client_cpu = 0;   // this process
  double cluster_cpu = -1; // node processes (-1: unknown)
  double rss_mb = 0;       // peak resident memory of this process
  double node_rss_mb = -1; // the largest of the node processes' (-1: unknown)
  std::vector<double> failover_ms;
  uint64_t inspections = 0;
};

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void print(const options& o, const report& r, const std::string& target) {
  auto ops_s = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  auto mb_s = r.seconds > 0 ? static_cast<double>(r.bytes) / 1e6 / r.seconds : 0;
  auto per_k = [&](double cpu) { return r.ops ? cpu * 1000.0 / static_cast<double>(r.ops) : 0; };
  auto& h = r.latency;
  if (o.format == "json") {
    json j{{"tool", "cafraft-bench"},
           {"target", target},
           {"ops", r.ops},
           {"errors", r.errors},
           {"error_kinds", r.error_kinds},
           {"seconds", r.seconds},
           {"ops_per_sec", ops_s},
           {"mb_per_sec", mb_s},
           {"latency_us",
            {{"p50", us(h.quantile(0.5))},
             {"p90", us(h.quantile(0.9))},
             {"p99", us(h.quantile(0.99))},
             {"p999", us(h.quantile(0.999))},
             {"max", us(h.max())}}},
           {"client_cpu_s_per_1000_ops", per_k(r.client_cpu)},
           {"batch", o.batch}};
    if (r.cluster_cpu >= 0)
      j["cluster_cpu_s_per_1000_ops"] = per_k(r.cluster_cpu);
    j["peak_rss_mb"] = r.rss_mb;
    if (r.node_rss_mb >= 0)
      j["node_peak_rss_mb"] = r.node_rss_mb;
    if (o.inspect_every_ms > 0)
      j["inspections"] = r.inspections;
    if (!r.failover_ms.empty())
      j["failover_ms"] = {{"trials", r.failover_ms.size()},
                          {"p50", percentile(r.failover_ms, 0.5)},
                          {"p99", percentile(r.failover_ms, 0.99)},
                          {"max", percentile(r.failover_ms, 1.0)}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("target      %s\n", target.c_str());
  if (r.failover_ms.empty())
    std::printf("workload    %s, %d clients x %d in flight, %d B values, %d keys, %.0f s "
                "(after %.0f s warmup)\n",
                o.ops.c_str(), o.clients, o.inflight, o.value_size, o.keys, o.duration, o.warmup);
  else
    std::printf("workload    %s, %d clients x %d in flight, %d B values, %d keys, %.0f s in all "
                "(the load during the failover trials, errors included)\n",
                o.ops.c_str(), o.clients, o.inflight, o.value_size, o.keys, r.seconds);
  if (o.batch > 0)
    std::printf("batching    the requests of each connection's clients go through one batcher, "
                "%d batch%s in flight per node\n",
                o.batch, o.batch == 1 ? "" : "es");
  std::printf("throughput  %.0f ops/s, %.2f MB/s (%llu ops, %llu errors)\n", ops_s, mb_s,
              static_cast<unsigned long long>(r.ops), static_cast<unsigned long long>(r.errors));
  if (r.errors > 0) {
    std::printf("errors     ");
    for (auto& [kind, n] : r.error_kinds)
      std::printf(" %s %llu", kind.c_str(), static_cast<unsigned long long>(n));
    std::printf("\n");
  }
  std::printf("latency     p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us  max %.0f us\n",
              us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999)),
              us(h.max()));
  std::printf("cpu         %.3f s per 1000 ops in this process", per_k(r.client_cpu));
  if (r.cluster_cpu >= 0)
    std::printf(", %.3f s in the nodes", per_k(r.cluster_cpu));
  std::printf("\n");
  std::printf("memory      peak %.0f MB resident in this process", r.rss_mb);
  if (r.node_rss_mb >= 0)
    std::printf(", %.0f MB in the largest node", r.node_rss_mb);
  std::printf("\n");
  if (o.inspect_every_ms > 0)
    std::printf("inspection  every %d ms: %llu actor inspections\n", o.inspect_every_ms,
                static_cast<unsigned long long>(r.inspections));
  if (!r.failover_ms.empty())
    std::printf("failover    %zu trials: until the next write succeeded p50 %.0f ms, p99 %.0f "
                "ms, max %.0f ms\n",
                r.failover_ms.size(), percentile(r.failover_ms, 0.5),
                percentile(r.failover_ms, 0.99), percentile(r.failover_ms, 1.0));
}

// The nodes to send to, by address, in one actor system.
using node_map = std::map<std::string, caf::actor>;

// Asks every node for its leader until one is known; returns the leader's address or "".
std::string find_leader(caf::actor_system& sys, const node_map& nodes,
                        std::chrono::milliseconds limit) {
  caf::scoped_actor self{sys};
  auto until = steady::now() + limit;
  while (steady::now() < until) {
    for (auto& [address, node] : nodes) {
      std::string found;
      self->request(node, 500ms, cafraft::leader_atom::value)
          .receive([&](const pb::LeaderInfo& info) { found = info.address(); }, [](caf::error&) {});
      if (!found.empty())
        return found;
    }
    std::this_thread::sleep_for(20ms);
  }
  return {};
}

// Writes every key once, so that reads find values (64 writes in flight).
bool prefill(caf::actor_system& sys, const caf::actor& leader, const options& o) {
  caf::scoped_actor self{sys};
  std::string value(static_cast<size_t>(o.value_size), 'v');
  bool ok = true;
  for (int first = 0; first < o.keys && ok; first += 64) {
    std::vector<decltype(self->request(leader, 5s, pb::PutRequest{}))> window;
    for (int k = first; k < std::min(o.keys, first + 64); ++k) {
      pb::PutRequest req;
      req.set_key("key-" + std::to_string(k));
      req.set_value(value);
      window.push_back(self->request(leader, 5s, std::move(req)));
    }
    for (auto& w : window)
      w.receive([](const pb::WriteResponse&) {}, [&](caf::error&) { ok = false; });
  }
  return ok;
}

// What cafraft-console's `top` asks: the directory and an inspection of every actor of every
// node. Returns the number of inspections answered.
uint64_t inspect_all(caf::scoped_actor& self, const node_map& nodes) {
  uint64_t answered = 0;
  for (auto& [address, node] : nodes) {
    pb::ActorDirectory dir;
    bool ok = false;
    self->request(node, 1s, cafraft::directory_atom::value)
        .receive(
            [&](pb::ActorDirectory& d) {
              dir = std::move(d);
              ok = true;
            },
            [](caf::error&) {});
    if (!ok)
      continue;
    for (auto& a : dir.actors()) {
      pb::InspectRequest req;
      req.set_name(a.name());
      self->request(node, 1s, req)
          .receive([&](const pb::Inspection&) { ++answered; }, [](caf::error&) {});
    }
  }
  return answered;
}

// After the leader was killed: a write to every other node every 5 ms, each with its own
// timeout, until one succeeds; stores when. The clients' own requests to the killed leader
// are lost and wait for their timeout; the probe measures when the cluster takes writes again.
caf::behavior prober(caf::event_based_actor* self, node_map nodes, std::string killed,
                     std::shared_ptr<std::atomic<int64_t>> first_success) {
  return {[=](probe_atom) {
    for (auto& [address, node] : nodes) {
      if (address == killed)
        continue;
      pb::PutRequest req;
      req.set_key("failover-probe");
      req.set_value("x");
      self->request(node, 2s, std::move(req))
          .then(
              [=](const pb::WriteResponse&) {
                int64_t none = 0;
                first_success->compare_exchange_strong(none, now_ns());
              },
              [](caf::error&) {});
    }
    if (first_success->load() == 0)
      self->delayed_send(self, 5ms, probe_atom::value);
  }};
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o;
  CLI::App app{"cafraft-bench: closed-loop load against a cafraft cluster", "cafraft-bench"};
  app.add_option("--endpoints", o.endpoints, "A running cluster: HOST:PORT,...");
  app.add_option("--spawn", o.spawn, "Start a cluster of this many nodes instead");
  app.add_flag("--processes", o.processes, "With --spawn: as cafraft-node processes");
  app.add_flag("--memory", o.memory, "With --spawn (in-process): in-memory logs, no fsync");
  app.add_option("--data-dir", o.data_dir,
                 "With --spawn: data directories under this one "
                 "(default: a new directory under /tmp)");
  app.add_option("--clients", o.clients, "Closed-loop clients")->capture_default_str();
  app.add_option("--inflight", o.inflight, "Requests in flight per client")->capture_default_str();
  app.add_option("--value-size", o.value_size, "Bytes per value")->capture_default_str();
  app.add_option("--keys", o.keys, "Key space (uniformly random keys)")->capture_default_str();
  app.add_option("--duration", o.duration, "Seconds measured")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Seconds of load before measuring")->capture_default_str();
  app.add_option("--ops", o.ops, "put, get (linearizable) or mixed (half each)")
      ->check(CLI::IsMember({"put", "get", "mixed"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections,
                 "Over the network: separate actor systems (and so TCP connections) the clients "
                 "are spread over (default min(clients, 8))");
  app.add_option("--batch", o.batch,
                 "Send the clients' requests through a batcher per connection (actors/batcher.hpp) "
                 "with this many batches in flight per node; 0: each request alone")
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "A request gives up after this")
      ->capture_default_str();
  app.add_option("--failover-trials", o.failover_trials,
                 "With --spawn --processes: kill -9 the leader under load this many times");
  app.add_option("--inspect-every", o.inspect_every_ms,
                 "Inspect every actor of every node every this many ms (a console's top)");
  app.add_option("--scheduler", o.scheduler, "CAF scheduler policy of this process")
      ->check(CLI::IsMember({"stealing", "sharing"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "CAF scheduler threads of this process (0: CAF's default)")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "Of the nodes in this process: trace ... off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("-w,--write-out", o.format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraft-bench: %s (see --help)\n", e.what());
    return 1;
  }
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "cafraft-bench: %s\n", why.c_str());
    return 1;
  };
  if (o.endpoints.empty() == (o.spawn == 0))
    return usage("give either --endpoints or --spawn N");
  if (o.spawn < 0 || o.spawn > 9)
    return usage("--spawn takes 1 to 9 nodes");
  if (o.clients < 1 || o.inflight < 1 || o.value_size < 0 || o.keys < 1 || o.duration <= 0 ||
      o.warmup < 0 || o.timeout_ms <= 0 || o.connections < 0 || o.batch < 0 ||
      o.failover_trials < 0 || o.inspect_every_ms < 0 || o.threads < 0)
    return usage("counts and times must be positive");
  if (o.failover_trials > 0 && !o.processes)
    return usage("--failover-trials needs --spawn N --processes");
  if (o.memory && (o.spawn == 0 || o.processes))
    return usage("--memory needs --spawn N without --processes");
  cafraft::get_logger("cafraft")->set_level(spdlog::level::warn);
  cafraft::get_logger("cafraft-client")->set_level(spdlog::level::off);
  cafraft::get_logger("bench")->set_level(spdlog::level::from_str(o.log_level));

  std::string root = o.data_dir;
  bool own_root = false;
  if (o.spawn > 0 && !o.memory && root.empty()) {
    char tmpl[] = "/tmp/cafraft-bench-XXXXXX";
    if (!::mkdtemp(tmpl))
      return usage("cannot make a data directory under /tmp");
    root = tmpl;
    own_root = true;
  }
  bool remote = !o.endpoints.empty() || o.processes;
  int systems = !remote ? 1 : o.connections > 0 ? o.connections : std::min(o.clients, 8);

  std::vector<std::unique_ptr<cafraft::network_config>> cfgs;
  std::vector<std::unique_ptr<caf::actor_system>> sys;
  cafraft::scheduling sched;
  sched.policy = o.scheduler;
  sched.threads = static_cast<size_t>(o.threads);
  for (int i = 0; i < systems; ++i) {
    cfgs.push_back(std::make_unique<cafraft::network_config>("", "", "", sched));
    sys.push_back(std::make_unique<caf::actor_system>(*cfgs.back()));
  }

  // The cluster: addresses and, per actor system, a handle for each.
  std::unique_ptr<process_cluster> procs;
  std::vector<std::string> endpoints;
  std::vector<node_map> nodes(static_cast<size_t>(systems));
  std::vector<std::unique_ptr<cafraft::remote_client>> dialers;
  std::map<std::string, caf::actor> local_nodes; // id -> node (in-process)
  std::vector<caf::actor> clients;
  std::vector<caf::actor> batchers; // with --batch, one per actor system
  std::string target;
  // Stops what runs (an actor system waits for its actors when it goes) and removes the data.
  auto shut_down = [&] {
    for (auto& c : clients)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    for (auto& b : batchers)
      caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    for (auto& [id, n] : local_nodes)
      caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
    dialers.clear();
    procs.reset();
    local_nodes.clear();
    for (auto& m : nodes)
      m.clear();
    clients.clear();
    batchers.clear();
    sys.clear();
    if (own_root)
      std::filesystem::remove_all(root);
  };
  // A failure after the cluster started: exit 2 (3 when nothing could be reached).
  auto failed_run = [&](int code, const std::string& why) {
    std::fprintf(stderr, "cafraft-bench: %s\n", why.c_str());
    shut_down();
    return code;
  };
  if (o.processes) {
    procs = std::make_unique<process_cluster>(o.spawn, root);
    endpoints = procs->endpoints();
    target = std::to_string(o.spawn) + " cafraft-node processes on 127.0.0.1, fsync on";
  } else if (!o.endpoints.empty()) {
    if (auto why = cafraft::parse_endpoints(o.endpoints, endpoints); !why.empty())
      return usage("--endpoints " + why);
    target = "cluster at " + o.endpoints;
  } else {
    std::vector<cafraft::member> members;
    for (int i = 1; i <= o.spawn; ++i)
      members.push_back({"n" + std::to_string(i), "bench/n" + std::to_string(i)});
    for (auto& m : members) {
      cafraft::node_config nc;
      nc.id = m.id;
      nc.members = members;
      nc.logger_name = "bench";
      if (o.memory)
        nc.storage = std::make_shared<cafraft::memory_storage>();
      else
        nc.data_dir = root + "/" + m.id;
      auto n = cafraft::spawn_node(*sys[0], nc);
      if (!n)
        return failed_run(2, "cannot start " + m.id + ": " + cafraft::render(n.error()));
      local_nodes[m.id] = *n;
      nodes[0][m.address] = *n;
      endpoints.push_back(m.address);
    }
    cafraft::connect_all(local_nodes);
    target = std::to_string(o.spawn) + " nodes in this process, clients beside them, " +
             (o.memory ? "in-memory logs" : "fsync on");
  }
  if (remote) {
    for (int i = 0; i < systems; ++i) {
      dialers.push_back(
          std::make_unique<cafraft::remote_client>(*sys[static_cast<size_t>(i)], endpoints, false));
      auto until = steady::now() + 20s;
      for (auto& e : endpoints) {
        caf::actor d;
        while (!d && steady::now() < until)
          d = dialers.back()->connect(e, 1000ms);
        if (!d)
          return failed_run(3, "cannot reach " + e);
        nodes[static_cast<size_t>(i)][e] = d;
      }
    }
  }
  auto leader = find_leader(*sys[0], nodes[0], 20s);
  if (leader.empty())
    return failed_run(2, "no leader among the endpoints within 20 s");
  if (nodes[0].count(leader) == 0) // named otherwise: the clients find it through redirects
    leader = endpoints.front();
  if (o.ops != "put" && !prefill(*sys[0], nodes[0].at(leader), o))
    return failed_run(2, "writing the keys before the run failed");

  // The clients, spread over the actor systems, all starting at the leader.
  std::vector<std::shared_ptr<run_shared>> shared;
  std::vector<std::shared_ptr<client_result>> results;
  auto t_start = now_ns();
  auto measure_from = t_start + static_cast<int64_t>(o.warmup * 1e9);
  for (int i = 0; i < systems; ++i) {
    auto s = std::make_shared<run_shared>();
    s->by_address = nodes[static_cast<size_t>(i)];
    s->addresses = endpoints;
    s->mix = o.ops == "put"   ? run_shared::puts
             : o.ops == "get" ? run_shared::gets
                              : run_shared::mixed;
    s->value.assign(static_cast<size_t>(o.value_size), 'x');
    s->keys = o.keys;
    s->inflight = o.inflight;
    s->timeout = std::chrono::milliseconds{o.timeout_ms};
    if (o.batch > 0) {
      s->batcher = cafraft::spawn_batcher(
          *sys[static_cast<size_t>(i)],
          cafraft::batcher_options{static_cast<size_t>(o.batch), s->timeout});
      batchers.push_back(s->batcher);
    }
    s->measure_from_ns = measure_from;
    shared.push_back(s);
  }
  for (int c = 0; c < o.clients; ++c) {
    auto i = static_cast<size_t>(c % systems);
    results.push_back(std::make_shared<client_result>());
    auto& s = shared[i];
    auto lead_index = static_cast<size_t>(std::find(endpoints.begin(), endpoints.end(), leader) -
                                          endpoints.begin());
    clients.push_back(sys[i]->spawn(client_impl, s, results.back(),
                                    lead_index + static_cast<size_t>(c) * endpoints.size()));
  }
  auto cpu0 = own_cpu_seconds();
  auto cluster_cpu0 = procs ? procs->cpu_seconds() : 0.0;
  for (auto& c : clients)
    caf::anon_send(c, start_atom::value);

  report r;
  std::atomic<bool> inspecting{o.inspect_every_ms > 0};
  std::atomic<uint64_t> inspections{0};
  std::thread inspector;
  if (o.inspect_every_ms > 0)
    inspector = std::thread{[&] {
      caf::scoped_actor self{*sys[0]};
      while (inspecting) {
        auto next = steady::now() + std::chrono::milliseconds{o.inspect_every_ms};
        inspections += inspect_all(self, nodes[0]);
        std::this_thread::sleep_until(next);
      }
    }};

  // Failover trials: once warmed up, kill the leader, wait for the next successful write,
  // restart the killed node from its data, let it catch up, again.
  auto total = [&] {
    uint64_t n = 0;
    for (auto& s : shared)
      n += s->ops.load(std::memory_order_relaxed);
    return n;
  };
  auto progress_line = [&](double at, uint64_t ops_now, uint64_t& ops_before) {
    std::fprintf(stderr, "  %4.0fs  %8.0f ops/s\n", at, static_cast<double>(ops_now - ops_before));
    ops_before = ops_now;
  };
  std::this_thread::sleep_until(steady::time_point{std::chrono::nanoseconds{measure_from}});
  uint64_t seen = 0;
  if (o.failover_trials > 0) {
    for (int t = 0; t < o.failover_trials; ++t) {
      auto lead = find_leader(*sys[0], nodes[0], 10s);
      if (lead.empty()) {
        std::fprintf(stderr, "trial %d: no leader\n", t + 1);
        break;
      }
      auto id = procs->id_at(lead);
      std::this_thread::sleep_for(500ms);
      auto first_success = std::make_shared<std::atomic<int64_t>>(0);
      auto killed = now_ns();
      procs->kill(id);
      auto probe = sys[0]->spawn(prober, nodes[0], lead, first_success);
      caf::anon_send(probe, probe_atom::value);
      while (first_success->load() == 0 && now_ns() - killed < 30'000'000'000)
        std::this_thread::sleep_for(1ms);
      caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
      auto gap_ms = static_cast<double>(first_success->load() - killed) / 1e6;
      r.failover_ms.push_back(gap_ms);
      std::fprintf(stderr, "  trial %2d: killed leader %s, next write after %.0f ms\n", t + 1,
                   id.c_str(), gap_ms);
      procs->start(id);
      std::this_thread::sleep_for(1500ms); // the restarted node catches up
    }
    for (auto& s : shared)
      s->stop_at_ns = now_ns();
  } else {
    auto end = measure_from + static_cast<int64_t>(o.duration * 1e9);
    for (auto& s : shared)
      s->stop_at_ns = end;
    double at = 0;
    while (now_ns() < end) {
      std::this_thread::sleep_for(std::min<int64_t>(1'000'000'000, end - now_ns()) * 1ns);
      at += 1;
      progress_line(at, total(), seen);
    }
  }
  auto t_end = std::min(now_ns(), shared[0]->stop_at_ns.load());
  // Every client finishes its requests in flight (those are not counted).
  for (size_t c = 0; c < clients.size(); ++c) {
    caf::scoped_actor self{*sys[c % sys.size()]};
    self->request(clients[c], std::chrono::milliseconds{o.timeout_ms} + 5s, finish_atom::value)
        .receive([](bool) {}, [](caf::error&) {});
  }
  r.client_cpu = own_cpu_seconds() - cpu0;
  if (procs) {
    r.cluster_cpu = procs->cpu_seconds() - cluster_cpu0;
    r.node_rss_mb = procs->peak_rss_mb();
  }
  r.rss_mb = peak_rss_mb_of(::getpid());
  inspecting = false;
  if (inspector.joinable())
    inspector.join();
  r.inspections = inspections;
  r.seconds = static_cast<double>(t_end - measure_from) / 1e9;
  for (auto& res : results) {
    r.ops += res->ops;
    r.errors += res->errors;
    for (auto& [kind, n] : res->error_kinds)
      r.error_kinds[kind] += n;
    r.bytes += res->bytes;
    r.latency.merge(res->latency);
  }
  print(o, r, target);
  shut_down();
  return r.ops > 0 ? 0 : 2;
}
