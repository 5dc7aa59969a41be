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
#include "actors/role_common.hpp"
#include "actors/roles.hpp"
#include "runtime/canary.hpp"

namespace cafraft {

namespace {

struct follower_state : role_base {
  bool chunk_pending = false; // a snapshot chunk is with storage: others wait for a resend
  // Until then a leader was heard from recently: pre-votes are refused (thesis §9.6).
  caf::actor_clock::time_point lease_until{};
  static inline const char* name = "cafraft.follower";
};

using follower_ptr = inspected<follower_state>*;

// A message of the leader of `term` (at least ours): follow it, and keep the election timer
// and the pre-vote lease from running out.
void heard_from_leader(follower_ptr self, uint64_t term, const std::string& leader) {
  auto& st = self->state;
  auto& s = *st.rs;
  rules::observe_term(s, term);
  if (s.leader_id != leader) {
    s.leader_id = leader;
    st.ctx.log->info("{} [term {}] follows leader {}", s.id, s.term, s.leader_id);
    self->send(st.ctx.node, leadership_atom::value, s.term, leader, s.address_of(leader));
  }
  reset_election_timer(self);
  st.lease_until = self->clock().now() + st.ctx.cfg->election_timeout_min;
}

void on_append(follower_ptr self, const pb::AppendEntries& req) {
  auto& st = self->state;
  auto& s = *st.rs;
  persist_batch batch;
  if (req.term() < s.term &&
      !CAFRAFT_CANARY("follower_accepts_stale_leader")) { // §5.1: a stale leader steps down
    auto resp = rules::reject_stale_append(s, req);
    persist_then(self, std::move(batch), [=] { send_to(self, req.leader_id(), resp); });
    return;
  }
  heard_from_leader(self, req.term(), req.leader_id());
  bool was_resyncing = s.resyncing;
  auto fx = rules::accept_append(s, req);
  if (was_resyncing && !s.resyncing)
    st.ctx.log->info("{} [term {}] caught up after its log was discarded: votes again", s.id,
                     s.term);
  batch.hard_state = rules::take_hard_state(s);
  batch.truncate_from = fx.truncated_from;
  batch.entries = std::move(fx.appended);
  if (fx.truncated_from > 0)
    st.ctx.log->info("{} [term {}] removed conflicting entries from index {}", s.id, s.term,
                     fx.truncated_from);
  auto leader = req.leader_id();
  if (CAFRAFT_CANARY("append_ack_before_persisted")) { // the answer overtakes the write
    send_to(self, leader, fx.response);
    persist_then(self, std::move(batch), [] {});
  } else {
    persist_then(self, std::move(batch),
                 [=, resp = std::move(fx.response)] { send_to(self, leader, resp); });
  }
  apply_committed(self);
  check_removal(self);
}

// A chunk is stored; when it completed the snapshot, installs it.
void on_chunk_stored(follower_ptr self, const pb::InstallSnapshot& req,
                     pb::InstallSnapshotResponse resp, uint64_t next, bool complete) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto& meta = req.meta();
  st.chunk_pending = false;
  resp.set_last_log_index(s.last_index());
  if (!complete) {
    if (req.done() && next == 0)
      st.ctx.log->warn("{} [term {}] snapshot {} from {} failed its checksum; it is sent again",
                       s.id, s.term, meta.index(), req.leader_id());
    resp.set_next_offset(next);
    send_to(self, req.leader_id(), resp);
    return;
  }
  resp.set_next_offset(meta.size());
  resp.set_installed(true);
  if (meta.index() <= s.commit_index) { // entries that arrived meanwhile hold it already
    send_to(self, req.leader_id(), resp);
    return;
  }
  bool reset = rules::install_snapshot(s, meta);
  st.ctx.log->info("{} [term {}] installs snapshot through index {} (term {}, {} bytes) from {}{}",
                   s.id, s.term, meta.index(), meta.term(), meta.size(), req.leader_id(),
                   reset ? "; its log starts after it" : "");
  persist_batch batch;
  batch.hard_state = rules::take_hard_state(s); // the end of a resync, when this ends it
  batch.snapshot = meta;
  batch.reset_log = reset;
  auto leader = req.leader_id();
  resp.set_last_log_index(s.last_index());
  persist_then(self, std::move(batch), [=] { send_to(self, leader, resp); });
  // After the install is queued at storage (the state machine's read of the snapshot writes
  // it first), before any entry after the snapshot is handed to the state machine.
  self->send(st.ctx.state_machine, restore_atom::value, meta);
  check_removal(self);
}

void on_install_snapshot(follower_ptr self, const pb::InstallSnapshot& req) {
  auto& st = self->state;
  auto& s = *st.rs;
  pb::InstallSnapshotResponse resp;
  resp.set_follower_id(s.id);
  resp.set_incarnation(s.incarnation);
  resp.set_snapshot_index(req.meta().index());
  if (req.term() < s.term) { // §5.1: a stale leader learns our term and steps down
    resp.set_term(s.term);
    resp.set_last_log_index(s.last_index());
    persist_then(self, persist_batch{}, [=] { send_to(self, req.leader_id(), resp); });
    return;
  }
  heard_from_leader(self, req.term(), req.leader_id());
  resp.set_term(s.term);
  persist_batch batch;
  batch.hard_state = rules::take_hard_state(s);
  if (req.meta().index() <= s.commit_index) {
    // Everything the snapshot holds is committed here already (so it matches the leader's).
    resp.set_installed(true);
    resp.set_next_offset(req.meta().size());
    resp.set_last_log_index(s.last_index());
    persist_then(self, std::move(batch), [=] { send_to(self, req.leader_id(), resp); });
    return;
  }
  if (!batch.empty())
    persist_then(self, std::move(batch), [] {});
  if (st.chunk_pending)
    return; // one chunk at a time; the leader sends this one again if it is still needed
  st.chunk_pending = true;
  // Storage writes the hard state first: the answer never overtakes the term it carries.
  self->request(st.ctx.storage, caf::infinite, snapshot_chunk_atom::value, req)
      .then(
          [self, req, resp](uint64_t next, bool complete) {
            if (self->state.retired)
              return; // the next role does not install it; the leader sends it again
            step_guard<inspected<follower_state>> g{self, role_kind::follower};
            on_chunk_stored(self, req, resp, next, complete);
          },
          [self](caf::error& e) { storage_failed(self, e); });
}

void on_vote_request(follower_ptr self, const pb::RequestVote& req) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (refuse_removed_candidate(self, req))
    return;
  if (req.pre_vote()) { // changes nothing here, so nothing to persist
    bool leader_recent = !s.leader_id.empty() && self->clock().now() < st.lease_until &&
                         !CAFRAFT_CANARY("pre_vote_ignores_leader_lease");
    send_to(self, req.candidate_id(), rules::decide_pre_vote(s, req, leader_recent));
    return;
  }
  rules::observe_term(s, req.term());
  auto resp = rules::decide_vote(s, req);
  persist_batch batch;
  batch.hard_state = rules::take_hard_state(s);
  if (resp.granted()) {
    arm_election_timer(self); // §5.2: granting a vote resets the timer
    st.ctx.log->info("{} [term {}] granted vote to {}", s.id, s.term, req.candidate_id());
  } else {
    st.ctx.log->debug("{} [term {}] rejected vote for {} (term {})", s.id, s.term,
                      req.candidate_id(), req.term());
  }
  if (CAFRAFT_CANARY("vote_sent_before_persisted")) { // the vote overtakes its write
    send_to(self, req.candidate_id(), resp);
    persist_then(self, std::move(batch), [] {});
  } else {
    persist_then(self, std::move(batch), [=] { send_to(self, req.candidate_id(), resp); });
  }
}

// Learners, nodes that are resyncing, not electable, or refused by the policy hook never
// campaign; a leader that just stepped down on request lets one election timeout pass.
bool may_campaign(follower_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto& cfg = *st.ctx.cfg;
  if (s.skip_campaign) {
    s.skip_campaign = false;
    return false;
  }
  // A node that an uncommitted configuration removes still campaigns: it may hold that entry
  // alone among the remaining voters (its log is more up to date than theirs), and only a
  // leader can commit it (thesis §4.2.2: it then leads without counting itself, and steps
  // down once the removal is committed).
  bool removal_pending = s.was_member && s.self() == nullptr && s.config.index > s.commit_index;
  return (s.self_voter() || removal_pending) && !s.resyncing && !s.removed && cfg.electable &&
         (!cfg.may_campaign || cfg.may_campaign(s));
}

// Thesis §3.10: the leader hands its leadership to us; campaign at once, without a pre-vote
// (the others would refuse it: they heard from the leader just now).
void on_timeout_now(follower_ptr self, const pb::TimeoutNow& req) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto& cfg = *st.ctx.cfg;
  if (req.term() != s.term || !s.self_voter() || s.resyncing || s.removed || !cfg.electable ||
      (cfg.may_campaign && !cfg.may_campaign(s))) {
    st.ctx.log->info("{} [term {}] does not take over from {}: it may not campaign", s.id, s.term,
                     req.leader_id());
    return; // the leader's transfer times out
  }
  st.ctx.log->info("{} [term {}] takes over the leadership from {}", s.id, s.term, req.leader_id());
  s.campaign_now = true;
  hand_over(self, role_kind::candidate);
}

template <class Response> void on_stale_response(follower_ptr self, const Response& resp) {
  auto& s = *self->state.rs;
  if (rules::observe_term(s, resp.term()))
    persist_hard_state(self);
}

caf::behavior follower_impl(follower_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                            uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  persist_hard_state(self); // a term learned by the role before us
  arm_election_timer(self);
  check_removal(self); // a leader that removed itself hands over to us
  using guard = step_guard<inspected<follower_state>>;
  constexpr auto kind = role_kind::follower;
  return caf::message_handler{
      [self](election_timeout_atom, uint64_t gen) {
        guard g{self, kind};
        auto& st = self->state;
        if (!election_timer_due(self, gen))
          return; // stale, or a leader was heard from since: it waits for the rest
        if (!may_campaign(self)) {
          arm_election_timer(self);
          return;
        }
        st.ctx.log->info("{} [term {}] election timeout, leader {} silent", st.rs->id, st.rs->term,
                         st.rs->leader_id.empty() ? "unknown" : st.rs->leader_id);
        hand_over(self, role_kind::candidate);
      },
      [self](const pb::AppendEntries& req) {
        guard g{self, kind};
        on_append(self, req);
      },
      [self](const pb::RequestVote& req) {
        guard g{self, kind};
        on_vote_request(self, req);
      },
      [self](const pb::RequestVoteResponse& resp) {
        guard g{self, kind};
        on_stale_response(self, resp);
      },
      [self](const pb::AppendEntriesResponse& resp) {
        guard g{self, kind};
        on_stale_response(self, resp);
      },
      [self](const pb::InstallSnapshot& req) {
        guard g{self, kind};
        on_install_snapshot(self, req);
      },
      [self](const pb::InstallSnapshotResponse& resp) {
        guard g{self, kind};
        on_stale_response(self, resp);
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) {
        guard g{self, kind};
        rules::compact(*self->state.rs, meta);
      },
      [self](const pb::TimeoutNow& req) {
        guard g{self, kind};
        on_timeout_now(self, req);
      },
  }
      .or_else(non_leader_client_handlers(self, kind))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_follower(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed) {
  return node->spawn<caf::linked>(follower_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
