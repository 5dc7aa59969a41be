// Embedding cafraft in a CAF application: register the message types, spawn three nodes,
// write and read through typed requests. Built with the project (build/bin/embed-example).
#include <cstdio>
#include <filesystem>

#include <caf/all.hpp>

#include <cafraft/actors/client.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/node_handle.hpp>
#include <cafraft/messages/register.hpp>

int main() {
  caf::actor_system_config cfg;
  cafraft::register_types(cfg); // every message type and the error category, in one call
  caf::actor_system sys{cfg};

  std::vector<cafraft::member> members{
      {"a", "host-a:4000"}, {"b", "host-b:4000"}, {"c", "host-c:4000"}};
  std::map<std::string, caf::actor> nodes;
  for (auto& m : members) {
    cafraft::node_config nc;
    nc.id = m.id;
    nc.members = members;
    nc.data_dir = "/tmp/cafraft-embed-example/" + m.id; // WAL and hard state, locked while used
    nc.election_timeout_min = std::chrono::milliseconds{150};
    nc.election_timeout_max = std::chrono::milliseconds{300};
    nc.heartbeat_interval = std::chrono::milliseconds{50};
    auto node = cafraft::spawn_node(sys, nc); // durable storage, KV state machine
    if (!node) {
      std::printf("cannot start %s: %s\n", m.id.c_str(), cafraft::render(node.error()).c_str());
      return 1;
    }
    nodes[m.id] = *node;
  }
  cafraft::connect_all(nodes);

  // A request straight to a node through its typed handle (messages/node_handle.hpp): a
  // request the node does not take, or a handler of the wrong response type, does not
  // compile. A follower answers not_leader with the leader's id and address, or unknown_leader
  // during an election.
  caf::scoped_actor self{sys};
  cafraft::node_handle a = cafraft::typed(nodes["a"]);
  cafraft::pb::PutRequest put;
  put.set_key("greeting");
  put.set_value("hello");
  self->request(a, std::chrono::seconds{1}, put)
      .receive(
          [](const cafraft::pb::WriteResponse& r) {
            std::printf("a committed at %lu\n", r.index());
          },
          [](const caf::error& e) { std::printf("a says %s\n", cafraft::render(e).c_str()); });

  // cafraft::client follows redirects and retries while no leader is known.
  cafraft::client c{sys, nodes};
  auto w = c.put("greeting", "hello");
  auto r = c.get("greeting"); // linearizable (ReadIndex)
  if (!w || !r || !r->found())
    return 1;
  std::printf("greeting = %s (written at index %lu)\n", r->value().c_str(), w->index());
  for (auto& [id, n] : nodes) {
    caf::scoped_actor waiter{sys};
    waiter->monitor(n);
    caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
    waiter->receive([](const caf::down_msg&) {});
  }
  std::filesystem::remove_all("/tmp/cafraft-embed-example"); // the nodes have let go of it
  return 0;
}
