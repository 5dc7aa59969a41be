#include "actors/node.hpp"

#include <random>

#include <caf/all.hpp>

#include "actors/context.hpp"
#include "actors/guards.hpp"
#include "actors/peer.hpp"
#include "actors/roles.hpp"
#include "actors/state_machine.hpp"
#include "actors/storage.hpp"
#include "messages/api.hpp"
#include "messages/local.hpp"
#include "runtime/durable_storage.hpp"
#include "runtime/logging.hpp"
#include "runtime/state_machine.hpp"

namespace cafraft {

namespace {

struct node_state {
  node_context ctx;
  caf::actor role;
  role_kind kind = role_kind::follower;
  std::mt19937_64 seeds; // seeds each role's own random source
  static inline const char* name = "cafraft.node";
};

using node_ptr = caf::stateful_actor<node_state>*;

caf::actor spawn_role(node_ptr self, role_kind kind, std::shared_ptr<raft_state> rs) {
  auto& st = self->state;
  auto seed = st.seeds();
  switch (kind) {
  case role_kind::follower:
    return spawn_follower(self, st.ctx, std::move(rs), seed);
  case role_kind::candidate:
    return spawn_candidate(self, st.ctx, std::move(rs), seed);
  case role_kind::leader:
    return spawn_leader(self, st.ctx, std::move(rs), seed);
  }
  return {};
}

caf::behavior node_impl(node_ptr self, std::shared_ptr<const node_config> cfg,
                        std::shared_ptr<log_storage> store, std::shared_ptr<raft_state> rs,
                        std::optional<pb::SnapshotMeta> snapshot, std::string snapshot_data) {
  auto& st = self->state;
  install_guards(self);
  st.ctx.node = caf::actor_cast<caf::actor>(self);
  st.ctx.cfg = cfg;
  st.ctx.log = get_logger(cfg->logger_name);
  st.seeds.seed(cfg->seed != 0 ? cfg->seed : std::random_device{}());
  st.ctx.storage = spawn_storage(self, std::move(store), cfg->detached_storage);
  st.ctx.state_machine = spawn_state_machine(self, cfg, st.ctx.storage,
                                             cfg->make_state_machine ? cfg->make_state_machine()
                                                                     : std::make_unique<kv_store>(),
                                             std::move(snapshot), std::move(snapshot_data));
  for (auto& m : cfg->members)
    if (m.id != cfg->id)
      st.ctx.peers.emplace(m.id, spawn_peer(self, cfg->id, m.id, st.ctx.log));
  st.ctx.log->info("{} [term {}] starts with a snapshot through {} and log entries to {}, {} "
                   "members",
                   cfg->id, rs->term, rs->snapshot_index, rs->last_index(), cfg->members.size());
  st.role = spawn_role(self, role_kind::follower, std::move(rs));
  // Everything else goes to the current role; a retired role sends it back here.
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        return self->delegate(self->state.role, x.move_content_to_message());
      });
  return {
      [self](handover_atom, role_handover& h) {
        auto& ns = self->state;
        if (self->current_sender() != ns.role) // only the current role may hand over
          return;
        auto old = ns.role;
        ns.kind = h.next;
        ns.ctx.log->info("{} [term {}] is now {}", ns.ctx.cfg->id, h.state->term,
                         to_string(h.next));
        ns.role = spawn_role(self, h.next, std::move(h.state));
        self->send(old, retire_atom::value);
      },
      [self](peer_handle_atom, const std::string& peer_id, const caf::actor& handle) {
        auto& peers = self->state.ctx.peers;
        auto i = peers.find(peer_id);
        if (i != peers.end())
          self->send(i->second, peer_handle_atom::value, handle);
      },
  };
}

} // namespace

caf::expected<caf::actor> spawn_node(caf::actor_system& sys, node_config cfg) {
  if (auto why = validate(cfg); !why.empty())
    return make_error(errc::invalid_request, std::move(why));
  auto store = cfg.storage;
  if (!store) {
    durable_options opts;
    opts.dir = cfg.data_dir;
    opts.node_id = cfg.id;
    opts.cluster_id = cfg.cluster_id;
    opts.segment_bytes = cfg.wal_segment_bytes;
    opts.discard_corrupt_log = cfg.discard_corrupt_log;
    opts.logger_name = cfg.logger_name;
    store = std::make_shared<durable_storage>(std::move(opts));
  }
  auto rs = std::make_shared<raft_state>();
  recovered_state rec;
  try {
    rec = store->load();
  } catch (const std::exception& ex) {
    return make_error(errc::storage_failed, ex.what());
  }
  rs->term = rec.hard_state.term();
  rs->voted_for = rec.hard_state.voted_for();
  rs->log = std::move(rec.log);
  rs->resyncing = rec.hard_state.resyncing();
  if (rec.snapshot) { // everything in it was committed and applied
    rs->snapshot_index = rec.snapshot->index();
    rs->snapshot_term = rec.snapshot->term();
    rs->commit_index = rs->apply_sent = rs->snapshot_index;
  }
  rs->id = cfg.id;
  rs->stored_term = rs->term;
  rs->stored_vote = rs->voted_for;
  rs->stored_resyncing = rs->resyncing;
  rs->voters = cfg.members;
  auto shared_cfg = std::make_shared<const node_config>(std::move(cfg));
  return sys.spawn(node_impl, std::move(shared_cfg), std::move(store), std::move(rs),
                   std::move(rec.snapshot), std::move(rec.snapshot_data));
}

void connect_peer(const caf::actor& node, const std::string& peer_id, const caf::actor& peer_node) {
  caf::anon_send(node, peer_handle_atom::value, peer_id, peer_node);
}

void connect_all(const std::map<std::string, caf::actor>& nodes) {
  for (auto& [id, node] : nodes)
    for (auto& [peer_id, peer] : nodes)
      if (id != peer_id)
        connect_peer(node, peer_id, peer);
}

} // namespace cafraft
