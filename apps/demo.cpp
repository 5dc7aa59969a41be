// cafraft-demo: three nodes in one process elect a leader and commit writes; the leader is
// stopped; the others elect a new leader in a later term; writes continue; the stopped node
// comes back from its storage and catches up; every node ends with the same data.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/client.hpp"
#include "actors/node.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

long ms_since(clock_type::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
}

// Polls the nodes until one of them leads in a term above `after_term`.
bool wait_for_leader(cafraft::client& c, const std::map<std::string, caf::actor>& nodes,
                     uint64_t after_term, std::string& leader, uint64_t& term) {
  auto until = clock_type::now() + 10s;
  while (clock_type::now() < until) {
    for (auto& [id, ignored] : nodes) {
      auto st = c.status(id);
      if (st && st->role() == "leader" && st->term() > after_term) {
        leader = id;
        term = st->term();
        return true;
      }
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

bool write_keys(cafraft::client& c, int from, int to) {
  for (int i = from; i < to; ++i) {
    auto key = "key-" + std::to_string(i);
    auto r = c.put(key, "value-" + std::to_string(i));
    if (!r) {
      std::printf("  put %s failed: %s\n", key.c_str(), cafraft::render(r.error()).c_str());
      return false;
    }
    if (i % 10 == 9 || i + 1 == to)
      std::printf("  put %s committed at index %llu (term %llu)\n", key.c_str(),
                  static_cast<unsigned long long>(r->index()),
                  static_cast<unsigned long long>(r->term()));
  }
  return true;
}

int run(const std::string& data_root) {
  caf::actor_system_config cfg;
  cafraft::register_types(cfg);
  caf::actor_system sys{cfg};
  cafraft::get_logger("demo")->set_level(spdlog::level::warn);

  std::vector<cafraft::member> members{
      {"n1", "in-process/n1"}, {"n2", "in-process/n2"}, {"n3", "in-process/n3"}};
  auto start = [&](const std::string& id) {
    cafraft::node_config nc;
    nc.id = id;
    nc.members = members;
    nc.cluster_id = "demo";
    nc.data_dir = data_root + "/" + id;
    nc.logger_name = "demo";
    auto n = cafraft::spawn_node(sys, nc);
    // A node stopped a moment ago may still hold its directory's lock while it winds down.
    for (int i = 0; !n && i < 20; ++i) {
      std::this_thread::sleep_for(100ms);
      n = cafraft::spawn_node(sys, nc);
    }
    if (!n) {
      std::printf("cannot start %s: %s\n", id.c_str(), cafraft::render(n.error()).c_str());
      std::exit(1);
    }
    return *n;
  };
  std::map<std::string, caf::actor> nodes;
  for (auto& m : members)
    nodes[m.id] = start(m.id);
  cafraft::connect_all(nodes);
  std::printf("started n1, n2, n3 (election timeouts 150-300 ms, heartbeat 50 ms)\n");

  cafraft::client c{sys, nodes};
  auto t0 = clock_type::now();
  std::string leader;
  uint64_t term = 0;
  if (!wait_for_leader(c, nodes, 0, leader, term)) {
    std::printf("no leader was elected\n");
    return 1;
  }
  std::printf("%s leads term %llu, elected after %ld ms\n", leader.c_str(),
              static_cast<unsigned long long>(term), ms_since(t0));
  if (!write_keys(c, 0, 20))
    return 1;

  std::printf("stopping the leader %s\n", leader.c_str());
  auto old_leader = leader;
  caf::anon_send_exit(nodes[old_leader], caf::exit_reason::user_shutdown);
  nodes.erase(old_leader);
  c.forget(old_leader);
  auto t1 = clock_type::now();
  auto old_term = term;
  if (!wait_for_leader(c, nodes, old_term, leader, term)) {
    std::printf("no new leader was elected\n");
    return 1;
  }
  std::printf("%s leads term %llu, elected %ld ms after the old leader stopped\n", leader.c_str(),
              static_cast<unsigned long long>(term), ms_since(t1));
  if (!write_keys(c, 20, 40))
    return 1;

  std::printf("restarting %s from its data directory\n", old_leader.c_str());
  nodes[old_leader] = start(old_leader);
  cafraft::connect_all(nodes);
  cafraft::client all{sys, nodes};
  // Every node must reach the leader's commit index and hold the same 40 keys.
  auto last = all.put("last", "written after the restart");
  if (!last) {
    std::printf("write after restart failed: %s\n", cafraft::render(last.error()).c_str());
    return 1;
  }
  auto until = clock_type::now() + 10s;
  for (auto& [id, ignored] : nodes) {
    for (;;) {
      auto st = all.status(id);
      if (st && st->applied_index() >= last->index()) {
        std::printf("  %s: %s in term %llu, commit index %llu, applied %llu\n", id.c_str(),
                    st->role().c_str(), static_cast<unsigned long long>(st->term()),
                    static_cast<unsigned long long>(st->commit_index()),
                    static_cast<unsigned long long>(st->applied_index()));
        break;
      }
      if (clock_type::now() > until) {
        std::printf("%s did not catch up\n", id.c_str());
        return 1;
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  int mismatches = 0;
  for (int i = 0; i < 40; ++i) {
    auto key = "key-" + std::to_string(i);
    for (auto& [id, ignored] : nodes) {
      auto r = all.get(key, true, id);
      if (!r || !r->found() || r->value() != "value-" + std::to_string(i)) {
        std::printf("  %s has a different %s\n", id.c_str(), key.c_str());
        ++mismatches;
      }
    }
  }
  if (mismatches > 0)
    return 1;
  auto linear = all.get("key-39");
  std::printf("linearizable read of key-39 through the leader: %s\n",
              linear && linear->found() ? linear->value().c_str() : "missing");
  std::printf("all %zu nodes hold the same 40 keys; done in %ld ms\n", nodes.size(), ms_since(t0));
  for (auto& [id, n] : nodes)
    caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  return 0;
}

} // namespace

int main() {
  // Each node keeps its data directory (WAL, hard state) under a fresh temporary directory.
  char dir_template[] = "/tmp/cafraft-demo-XXXXXX";
  if (!::mkdtemp(dir_template)) {
    std::printf("cannot make a temporary directory\n");
    return 1;
  }
  std::printf("data directories under %s\n", dir_template);
  int rc = run(dir_template); // the actor system stops when run() returns
  std::filesystem::remove_all(dir_template);
  return rc;
}
