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
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "apps/network.hpp"
#include "apps/subprocess.hpp"
#include "bench/client.hpp"
#include "bench/options.hpp"
#include "bench/process_cluster.hpp"
#include "bench/report.hpp"
#include <cafraft/actors/batcher.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/storage.hpp>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace pb = cafraft::pb;

namespace {

using namespace cafraft::bench;
using probe_atom = caf::atom_constant<caf::atom("bprobe")>;

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
// node; `seen` gets each inspection. Returns the number of inspections answered.
template <class F> uint64_t inspect_all(caf::scoped_actor& self, const node_map& nodes, F seen) {
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
          .receive(
              [&](const pb::Inspection& i) {
                ++answered;
                seen(i);
              },
              [](caf::error&) {});
    }
  }
  return answered;
}

// Messages handled so far by the actors of every node, by kind (node, leader, peer, storage,
// ...), as each node's /metrics counts them (cafraft_actor_messages_handled_total).
std::map<std::string, uint64_t> messages_handled(caf::actor_system& sys, const node_map& nodes) {
  caf::scoped_actor self{sys};
  std::map<std::string, uint64_t> out;
  inspect_all(self, nodes, [&](const pb::Inspection& i) { out[i.kind()] += i.handled(); });
  return out;
}

// After the leader was killed: a write to every other node every 5 ms, each with its own
// timeout, until one succeeds; stores when: the time the cluster takes to take writes again.
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
  app.add_option("--read", o.read,
                 "The gets' read policy: linearizable, lease, follower (spread over every node) "
                 "or stale (likewise)")
      ->check(CLI::IsMember({"linearizable", "lease", "follower", "stale"}))
      ->capture_default_str();
  app.add_flag("--sessions", o.sessions,
               "Writes in client sessions, sent again after indefinite failures (through the "
               "batcher: implies --batch 1 when --batch is not given); the report counts the "
               "retries the session table answered");
  app.add_option("--ops", o.ops, "put, get or mixed (half each)")
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
    cfgs.push_back(std::make_unique<cafraft::network_config>(sched));
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
    procs = std::make_unique<process_cluster>(
        o.spawn, root,
        o.read == "lease" ? std::vector<std::string>{"--lease-reads"} : std::vector<std::string>{});
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
      nc.lease_reads = o.read == "lease";
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
          std::make_unique<cafraft::remote_client>(*sys[static_cast<size_t>(i)], endpoints));
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
    s->read = o.read == "lease"      ? pb::READ_LEASE
              : o.read == "follower" ? pb::READ_FOLLOWER
              : o.read == "stale"    ? pb::READ_STALE
                                     : pb::READ_LINEARIZABLE;
    s->value.assign(static_cast<size_t>(o.value_size), 'x');
    s->keys = o.keys;
    s->inflight = o.inflight;
    s->timeout = std::chrono::milliseconds{o.timeout_ms};
    if (o.batch > 0 || o.sessions) {
      auto bo = cafraft::batch_options(static_cast<size_t>(std::max(o.batch, 1)), s->timeout);
      if (o.sessions) { // the batcher follows not_leader to the leader's address
        auto by_address = s->by_address;
        bo.resolve = [by_address](const std::string&, const std::string& address) {
          auto a = by_address.find(address);
          return a != by_address.end() ? a->second : caf::actor{};
        };
        for (auto& [address, node] : by_address)
          bo.nodes.push_back(node);
        bo.retry_for = std::chrono::milliseconds{o.timeout_ms} * 5;
      }
      s->batcher = cafraft::spawn_batcher(*sys[static_cast<size_t>(i)], bo);
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
    // Reads any node may answer spread over all of them; the others start at the leader.
    bool anywhere = o.ops == "get" && (o.read == "follower" || o.read == "stale");
    auto first =
        anywhere ? static_cast<size_t>(c) : lead_index + static_cast<size_t>(c) * endpoints.size();
    clients.push_back(spawn_client(*sys[i], s, results.back(), first));
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
        inspections += inspect_all(self, nodes[0], [](const pb::Inspection&) {});
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
  // Messages the nodes' actors handle per operation: counted over the measured time (not with
  // failover trials, whose roles come and go).
  std::map<std::string, uint64_t> handled_before;
  if (o.failover_trials == 0)
    handled_before = messages_handled(*sys[0], nodes[0]);
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
    for (auto& [kind, n] : messages_handled(*sys[0], nodes[0]))
      r.messages_handled[kind] = n - std::min(n, handled_before[kind]);
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
  if (o.sessions) {
    r.session_retries = r.session_duplicates = 0;
    for (size_t b = 0; b < batchers.size(); ++b) {
      caf::scoped_actor self{*sys[b % sys.size()]};
      self->request(batchers[b], 2s, cafraft::status_atom::value)
          .receive(
              [&](uint64_t, uint64_t retries, uint64_t duplicates) {
                r.session_retries += static_cast<int64_t>(retries);
                r.session_duplicates += static_cast<int64_t>(duplicates);
              },
              [](caf::error&) {});
    }
  }
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
