// Leader: one actor per term of leadership.
//
//   owns      the Raft state while it leads, and every pending client request
//   receives  proposals (put, delete, propose), reads, AppendEntriesResponse and
//             InstallSnapshotResponse, its heartbeat timer, compaction after the state machine's
//             snapshots, and messages of other nodes that may depose it
//   sends     AppendEntries through the peer actors (batched, pipelined), the snapshot in chunks
//             to followers that need entries it has dropped, committed entries to the state
//             machine, answers to clients after apply
//   becomes   follower on any message of a higher term
//
//     candidate --won--> leader --higher term--> follower
//
// A thin shell: every decision (replication, commit, reads, membership, transfer, stepping
// down) is core::step_leader in runtime/core_leader.cpp, with its invariants. The shell turns
// messages into events, keeps the client's promises under request ids, runs the timers, and
// hands the effects to the executor (actors/executor.hpp).
#include <chrono>
#include <string>

#include <cafraft/actors/executor.hpp>
#include <cafraft/actors/roles.hpp>

namespace cafraft {

namespace {

struct leader_state : role_base {
  core::leader_role role;
  static inline const char* name = "cafraft.leader";
};

using leader_ptr = inspected<leader_state>*;

/// The one way into the leader's rules (core::step_leader).
void step(leader_ptr self, core::event ev) {
  step_guard<inspected<leader_state>> g{self, role_kind::leader};
  auto& st = self->state;
  execute(self, core::step_leader(*st.rs, st.role, core_env(self), ev), &step, &ev);
  wake_at(self, core::deadline(st.role));
}

/// A request the core answers later (reply or read_state): its promise waits under an id.
template <class Event, class... Ts> caf::response_promise ask(leader_ptr self, Ts&&... xs) {
  auto rp = self->make_response_promise();
  step(self, Event{self->state.hold(rp), std::forward<Ts>(xs)...});
  return rp;
}

caf::response_promise reject(leader_ptr self, std::string why) {
  auto rp = self->make_response_promise();
  rp.deliver(make_error(errc::invalid_request, std::move(why)));
  return rp;
}

template <class Request, class Field>
caf::response_promise propose_kv(leader_ptr self, Request& req, Field field) {
  if (req.key().empty())
    return reject(self, "empty key");
  pb::KvCommand cmd;
  *(cmd.*field)() = std::move(req);
  return ask<core::write_request>(self, pb::ENTRY_COMMAND, cmd.SerializeAsString());
}

pb::Inspection inspect_leader(leader_ptr self) {
  auto& st = self->state;
  auto fields = role_fields(*st.rs);
  auto now = self->clock().now();
  for (auto& [id, p] : st.role.repl->progress()) {
    auto heard = st.role.last_heard.find(id);
    fields.emplace_back("peer." + id + ".last_contact_ms",
                        heard == st.role.last_heard.end()
                            ? std::string{"never"}
                            : std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 now - heard->second)
                                                 .count()));
    fields.emplace_back("peer." + id + ".match", std::to_string(p.match));
    fields.emplace_back("peer." + id + ".next", std::to_string(p.next));
    fields.emplace_back("peer." + id + ".inflight", std::to_string(p.inflight));
    fields.emplace_back("peer." + id + ".state", p.departing      ? "departing"
                                                 : p.snapshotting ? "snapshot"
                                                 : p.probing      ? "probe"
                                                                  : "replicate");
  }
  fields.emplace_back("pending_writes", std::to_string(st.role.pending_writes.size()));
  fields.emplace_back("pending_reads", std::to_string(st.role.pending_reads.size()));
  return make_inspection(self, "leader", std::move(fields));
}

caf::behavior leader_impl(leader_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  step(self, core::started{});
  return caf::message_handler{
      [self](flush_atom) { step(self, core::flush_now{}); },
      [self](tick_atom) {
        woken(self);
        step(self, core::tick{});
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) { step(self, core::compacted{meta}); },
      [self](pb::PutRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_put); },
      [self](pb::DeleteRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_del); },
      [self](pb::CasRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_cas); },
      [self](pb::ProposeRequest& req) {
        return ask<core::write_request>(self, pb::ENTRY_COMMAND, std::move(*req.mutable_data()));
      },
      [self](const pb::GetRequest& req) {
        if (!req.stale())
          return ask<core::read_request>(self, req.key());
        auto rp = self->make_response_promise(); // this node's state machine as it is
        read_from_state_machine(self, rp, 0, req.key());
        return rp;
      },
      [self](status_atom) { return make_status(*self->state.rs, role_kind::leader); },
      [self](config_change_atom, pb::JoinRequest& req) {
        return ask<core::change_request>(self, std::optional<pb::JoinRequest>{std::move(req)},
                                         pb::LeaveRequest{});
      },
      [self](config_change_atom, pb::LeaveRequest& req) {
        return ask<core::change_request>(self, std::optional<pb::JoinRequest>{}, std::move(req));
      },
      [self](const pb::TransferLeadershipRequest& req) {
        return ask<core::transfer_request>(self, req.target());
      },
      [self](step_down_atom) { return ask<core::step_down_request>(self); },
      [self](inspect_atom) { return inspect_leader(self); },
  }
      .or_else(raft_message_handlers(self, &step))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_leader(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                        uint64_t seed) {
  return node->spawn<caf::linked>(leader_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
