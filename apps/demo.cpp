// cafraft-demo: three nodes in one process elect a leader and commit writes; the leader is
// stopped; the others elect a new leader in a later term; writes continue; the stopped node
// comes back from its storage and catches up; every node ends with the same data. Then a
// fourth node joins (as a learner, promoted once caught up) and one of the first three leaves.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <cafraft/actors/client.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>

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

std::string render_members(const google::protobuf::RepeatedPtrField<cafraft::pb::Member>& ms) {
  std::string out;
  for (auto& m : ms)
    out += (out.empty() ? "" : ", ") + m.id() + (m.learner() ? " (learner)" : "");
  return out;
}

// n4 joins through the running nodes (safe join: it has no data, so it asks to be added), is
// promoted once it has caught up, and then a follower leaves.
bool change_membership(caf::actor_system& sys, const std::string& data_root,
                       std::map<std::string, caf::actor>& nodes) {
  caf::scoped_actor self{sys};
  cafraft::node_config nc;
  nc.id = "n4";
  nc.address = "in-process/n4";
  nc.cluster_id = "demo";
  nc.data_dir = data_root + "/n4";
  nc.logger_name = "demo";
  cafraft::join_options opts;
  for (auto& [id, n] : nodes)
    opts.contacts.push_back(n);
  opts.resolve = [&nodes](const std::string& id, const std::string&) {
    auto i = nodes.find(id);
    return i == nodes.end() ? caf::actor{} : i->second;
  };
  auto t0 = clock_type::now();
  std::printf("n4 joins the cluster (no data directory yet)\n");
  auto n4 = cafraft::join_cluster(sys, nc, opts);
  if (!n4) {
    std::printf("n4 cannot join: %s\n", cafraft::render(n4.error()).c_str());
    return false;
  }
  nodes["n4"] = *n4;
  cafraft::connect_all(nodes);
  bool ok = false;
  self->request(*n4, 10s, cafraft::joined_atom::value)
      .receive(
          [&](cafraft::pb::MembershipResponse& r) {
            std::printf("  n4 admitted after %ld ms: configuration at index %llu is %s\n",
                        ms_since(t0), static_cast<unsigned long long>(r.config_index()),
                        render_members(r.members()).c_str());
            ok = true;
          },
          [&](caf::error& e) {
            std::printf("  n4 was refused: %s\n", cafraft::render(e).c_str());
          });
  if (!ok)
    return false;
  cafraft::client c{sys, nodes};
  std::string leader;
  auto until = clock_type::now() + 10s;
  for (bool voter = false; !voter;) {
    if (clock_type::now() > until) {
      std::printf("n4 was not promoted\n");
      return false;
    }
    std::this_thread::sleep_for(5ms);
    for (auto& [id, ignored] : nodes) {
      auto st = c.status(id);
      if (!st || st->role() != "leader")
        continue;
      leader = id;
      for (auto& m : st->members())
        voter = voter || (m.id() == "n4" && !m.learner());
      if (voter)
        std::printf("  n4 caught up and was promoted to voter after %ld ms: %s\n", ms_since(t0),
                    render_members(st->members()).c_str());
    }
  }
  auto r = c.get("key-39", true, "n4");
  std::printf("  n4 reads key-39 from its own state: %s\n",
              r && r->found() ? r->value().c_str() : "missing");
  std::string leaving = leader == "n2" ? "n3" : "n2";
  std::printf("%s leaves the cluster\n", leaving.c_str());
  auto changer = cafraft::spawn_change_client(sys, opts);
  cafraft::pb::LeaveRequest leave;
  leave.set_id(leaving);
  ok = false;
  self->request(changer, 10s, leave)
      .receive(
          [&](cafraft::pb::MembershipResponse& resp) {
            std::printf("  committed: configuration at index %llu is %s\n",
                        static_cast<unsigned long long>(resp.config_index()),
                        render_members(resp.members()).c_str());
            ok = true;
          },
          [&](caf::error& e) { std::printf("  leave failed: %s\n", cafraft::render(e).c_str()); });
  self->send_exit(changer, caf::exit_reason::user_shutdown);
  if (!ok)
    return false;
  // The removed node learns it and stops by itself (removed_member).
  self->monitor(nodes[leaving]);
  self->receive([&](caf::down_msg& dm) {
    std::printf("  %s stopped: %s\n", leaving.c_str(), cafraft::render(dm.reason).c_str());
  });
  nodes.erase(leaving);
  cafraft::client rest{sys, nodes};
  auto w = rest.put("after-leave", "1");
  if (!w) {
    std::printf("write after the leave failed: %s\n", cafraft::render(w.error()).c_str());
    return false;
  }
  std::printf("  a write commits at index %llu with %zu nodes\n",
              static_cast<unsigned long long>(w->index()), nodes.size());
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
  std::printf("all %zu nodes hold the same 40 keys\n", nodes.size());
  if (!change_membership(sys, data_root, nodes))
    return 1;
  std::printf("done in %ld ms\n", ms_since(t0));
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
