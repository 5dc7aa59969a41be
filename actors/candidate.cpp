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
#include <set>

#include "actors/role_common.hpp"
#include "actors/roles.hpp"
#include "runtime/canary.hpp"

namespace cafraft {

namespace {

struct candidate_state : role_base {
  std::set<std::string> votes;
  bool pre_voting = false;  // asking for pre-votes for term + 1; nothing changed yet
  bool campaigning = false; // true once our own vote is durable and requests went out
  static inline const char* name = "cafraft.candidate";
};

using candidate_ptr = inspected<candidate_state>*;

void campaign(candidate_ptr self);

void count_vote(candidate_ptr self, const std::string& voter) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (!(st.campaigning || st.pre_voting) || !s.is_voter(voter))
    return;
  st.votes.insert(voter);
  if (st.votes.size() < s.quorum())
    return;
  if (st.pre_voting) {
    st.ctx.log->info("{} [term {}] won the pre-vote with {} of {} votes", s.id, s.term,
                     st.votes.size(), s.config.voters());
    st.pre_voting = false;
    st.votes.clear();
    campaign(self);
    return;
  }
  st.ctx.log->info("{} [term {}] won the election with {} of {} votes", s.id, s.term,
                   st.votes.size(), s.config.voters());
  hand_over(self, role_kind::leader);
}

/// Thesis §9.6: asks whether a majority would vote for us in the next term before raising it.
void pre_campaign(candidate_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  st.pre_voting = true;
  if (CAFRAFT_CANARY("pre_vote_bumps_term")) { // moves to a new term before it asks
    rules::observe_term(s, s.term + 1);
    persist_hard_state(self);
  }
  st.ctx.log->info("{} [term {}] asks for pre-votes for term {}", s.id, s.term, s.term + 1);
  arm_election_timer(self);
  pb::RequestVote req;
  req.set_term(s.term + 1);
  req.set_candidate_id(s.id);
  req.set_last_log_index(s.last_index());
  req.set_last_log_term(s.last_term());
  req.set_pre_vote(true);
  rules::describe_candidate(s, req);
  for (auto& m : s.config.members)
    if (!m.learner && m.id != s.id)
      send_to(self, m.id, req);
  count_vote(self, s.id);
}

void campaign(candidate_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  s.term += 1;
  s.voted_for = s.id;
  s.leader_id.clear();
  st.ctx.log->info("{} [term {}] starts an election", s.id, s.term);
  arm_election_timer(self);
  pb::RequestVote req;
  req.set_term(s.term);
  req.set_candidate_id(s.id);
  req.set_last_log_index(s.last_index());
  req.set_last_log_term(s.last_term());
  rules::describe_candidate(s, req);
  persist_batch batch;
  batch.hard_state = rules::take_hard_state(s);
  // §5.2 with thesis §3.8: the vote for ourselves is durable before anyone is asked.
  persist_then(self, std::move(batch), [self, req] {
    auto& cs = self->state;
    if (cs.retired)
      return;
    step_guard<inspected<candidate_state>> g{self, role_kind::candidate};
    cs.campaigning = true;
    for (auto& m : cs.rs->config.members)
      if (!m.learner && m.id != cs.rs->id)
        send_to(self, m.id, req);
    count_vote(self, cs.rs->id);
  });
}

caf::behavior candidate_impl(candidate_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                             uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  auto& s0 = *self->state.rs;
  if (self->state.ctx.cfg->pre_vote && !s0.campaign_now)
    pre_campaign(self);
  else
    campaign(self);
  s0.campaign_now = false;
  using guard = step_guard<inspected<candidate_state>>;
  constexpr auto kind = role_kind::candidate;
  return caf::message_handler{
      [self](election_timeout_atom, uint64_t gen) {
        guard g{self, kind};
        if (gen == self->state.timer_gen) // split vote or lost messages: try again, next term
          hand_over(self, role_kind::candidate);
      },
      [self](const pb::RequestVoteResponse& resp) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        auto& st = self->state;
        if (resp.removed()) {
          st.ctx.log->warn("{} [term {}] learns from {} that it was removed from the cluster", s.id,
                           s.term, resp.voter_id());
          report_removal(self);
          return;
        }
        if (resp.pre_vote() && resp.granted()) {
          if (st.pre_voting && resp.term() == s.term + 1)
            count_vote(self, resp.voter_id());
        } else if (resp.term() > s.term) {
          rules::observe_term(s, resp.term());
          hand_over(self, role_kind::follower);
        } else if (!resp.pre_vote() && resp.term() == s.term && resp.granted()) {
          count_vote(self, resp.voter_id());
        }
      },
      [self](const pb::AppendEntries& req) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        if (req.term() >= s.term) { // a leader of our term or later exists (§5.2)
          rules::observe_term(s, req.term());
          hand_over(self, role_kind::follower, true);
        } else {
          auto resp = rules::reject_stale_append(s, req);
          send_to(self, req.leader_id(), resp);
        }
      },
      [self](const pb::RequestVote& req) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        if (refuse_removed_candidate(self, req))
          return;
        if (req.pre_vote()) {
          send_to(self, req.candidate_id(), rules::decide_pre_vote(s, req, false));
          return;
        }
        if (req.term() > s.term) {
          rules::observe_term(s, req.term());
          hand_over(self, role_kind::follower, true);
        } else {
          pb::RequestVoteResponse resp; // we voted for ourselves in this term
          resp.set_term(s.term);
          resp.set_voter_id(s.id);
          resp.set_granted(false);
          send_to(self, req.candidate_id(), resp);
        }
      },
      [self](const pb::AppendEntriesResponse& resp) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        if (resp.term() > s.term) {
          rules::observe_term(s, resp.term());
          hand_over(self, role_kind::follower);
        }
      },
      [self](const pb::InstallSnapshot& req) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        if (req.term() >= s.term) { // a leader of our term or later exists (§5.2)
          rules::observe_term(s, req.term());
          hand_over(self, role_kind::follower, true);
        } else {
          pb::InstallSnapshotResponse resp;
          resp.set_term(s.term);
          resp.set_follower_id(s.id);
          resp.set_snapshot_index(req.meta().index());
          send_to(self, req.leader_id(), resp);
        }
      },
      [self](const pb::InstallSnapshotResponse& resp) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        if (resp.term() > s.term) {
          rules::observe_term(s, resp.term());
          hand_over(self, role_kind::follower);
        }
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) {
        guard g{self, kind};
        rules::compact(*self->state.rs, meta);
      },
  }
      .or_else(non_leader_client_handlers(self, kind))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_candidate(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                           uint64_t seed) {
  return node->spawn<caf::linked>(candidate_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
