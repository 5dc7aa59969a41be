// Follower: the role of a node that follows a leader, or waits for one.
//
//   owns      the Raft state while it follows
//   receives  AppendEntries, InstallSnapshot chunks, RequestVote (and stale responses), client
//             requests, its election timer, compaction after the state machine's snapshots
//   sends     responses through the peer actors, only after storage confirmed the write they
//             depend on (§5.1, thesis §3.8); committed entries to the state machine
//   becomes   candidate when the election timer fires with no word from a leader (§5.2)
//
//     start --> follower --(election timeout, voter)--> candidate
//                  ^  |
//                  +--+ AppendEntries of the current leader re-arms the timer
#include <cafraft/actors/executor.hpp>
#include <cafraft/actors/roles.hpp>

namespace cafraft {

namespace {

struct follower_state : role_base {
  core::follower_role role;
  static inline const char* name = "cafraft.follower";
};

using follower_ptr = inspected<follower_state>*;

/// The one way into the follower's rules (core::step_follower).
void step(follower_ptr self, core::event ev) {
  step_guard<inspected<follower_state>> g{self, role_kind::follower};
  auto& st = self->state;
  execute(self, core::step_follower(*st.rs, st.role, core_env(self), ev), &step, &ev);
  wake_at(self, core::deadline(st.role));
}

caf::behavior follower_impl(follower_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                            uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  auto& st = self->state;
  core::event start{core::started{}};
  execute(self, core::step_follower(*st.rs, st.role, core_env(self), start), &step, &start);
  wake_at(self, core::deadline(st.role));
  return caf::message_handler{
      [self](tick_atom) {
        woken(self);
        step(self, core::tick{});
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) { step(self, core::compacted{meta}); },
  }
      .or_else(non_leader_client_handlers(self, &step, role_kind::follower))
      .or_else(raft_message_handlers(self, &step))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_follower(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed) {
  return node->spawn<caf::linked>(follower_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
