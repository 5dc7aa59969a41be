// The smallest program on an installed cafraft: one node whose log lives in memory, a write
// and a linearizable read through cafraft::client, and a status request through the typed
// handle. Exits 0 when the read returns the write and the node says it leads.
#include <cstdio>
#include <memory>

#include <caf/all.hpp>

#include <cafraft/actors/client.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/errors.hpp>
#include <cafraft/messages/node_handle.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/storage.hpp>

int main() {
  caf::actor_system_config cfg;
  cafraft::register_types(cfg);
  caf::actor_system sys{cfg};

  cafraft::node_config nc;
  nc.id = "solo";
  nc.members = {{"solo", "localhost:4000"}};
  nc.storage = std::make_shared<cafraft::memory_storage>(); // no files: nothing to clean up
  auto node = cafraft::spawn_node(sys, nc);
  if (!node) {
    std::fprintf(stderr, "consumer: %s\n", cafraft::render(node.error()).c_str());
    return 1;
  }
  cafraft::client c{sys, {{"solo", *node}}};
  auto w = c.put("installed", "yes");
  auto r = c.get("installed");
  bool ok = w && r && r->found() && r->value() == "yes";
  // The typed handle: the request and its response type are checked when this compiles.
  caf::scoped_actor self{sys};
  self->request(cafraft::typed(*node), std::chrono::seconds{1}, cafraft::status_atom::value)
      .receive([&](cafraft::pb::NodeStatus& st) { ok = ok && st.role() == "leader"; },
               [&](caf::error&) { ok = false; });
  std::printf("consumer: installed = %s\n", ok ? r->value().c_str() : "(failed)");
  caf::anon_send_exit(*node, caf::exit_reason::user_shutdown);
  return ok ? 0 : 1;
}
