// Candidate: runs one election (§5.2), then hands over.
//
//   owns      the Raft state for the election
//   receives  RequestVoteResponse, AppendEntries and RequestVote of other nodes, client
//             requests (unknown_leader), its election timer
//   sends     RequestVote to every other voter, after its own vote and term are durable
//   becomes   leader with votes from a majority; follower when it hears of a leader of its
//             term or of a higher term; a new candidate (next term) when the timer fires
//
//     follower --timeout--> candidate --majority--> leader
//                            |   ^  \--AppendEntries / higher term--> follower
//                            +---+ timeout: a new candidate, next term
#include <cafraft/actors/executor.hpp>
#include <cafraft/actors/roles.hpp>

namespace cafraft {

namespace {

struct candidate_state : role_base {
  core::candidate_role role;
  static inline const char* name = "cafraft.candidate";
};

using candidate_ptr = inspected<candidate_state>*;

/// The one way into the candidate's rules (core::step_candidate).
void step(candidate_ptr self, core::event ev) {
  step_guard<inspected<candidate_state>> g{self, role_kind::candidate};
  auto& st = self->state;
  execute(self, core::step_candidate(*st.rs, st.role, core_env(self), ev), &step, &ev);
  wake_at(self, core::deadline(st.role));
}

caf::behavior candidate_impl(candidate_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                             uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  auto& st = self->state;
  core::event start{core::started{}};
  execute(self, core::step_candidate(*st.rs, st.role, core_env(self), start), &step, &start);
  wake_at(self, core::deadline(st.role));
  return caf::message_handler{
      [self](tick_atom) {
        woken(self);
        step(self, core::tick{});
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) { step(self, core::compacted{meta}); },
  }
      .or_else(non_leader_client_handlers(self, &step, role_kind::candidate))
      .or_else(raft_message_handlers(self, &step))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_candidate(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                           uint64_t seed) {
  return node->spawn<caf::linked>(candidate_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
