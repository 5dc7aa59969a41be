#include <cafraft/runtime/core.hpp>

#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/core_detail.hpp>
#include <cafraft/runtime/features.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft::core {

using detail::answer;
using detail::fail;
using detail::tell;

namespace {

/// Writes term and vote when they changed since they were last written.
void persist_hard_state(raft_state& s, effects& fx) {
  if (auto hs = rules::take_hard_state(s)) {
    persist p;
    p.batch.hard_state = std::move(hs);
    fx.push_back(std::move(p));
  }
}

/// A committed configuration removed this node: once that is durable (it never starts again
/// from its data), the node stops with removed_member.
void report_removal(raft_state& s, bool& reported, effects& fx) {
  if (reported)
    return;
  reported = true;
  s.removed = true;
  persist p;
  p.batch.hard_state = rules::take_hard_state(s);
  fx.push_back(std::move(p));
  fx.push_back(stop_removed{});
}

void check_removal(raft_state& s, bool& reported, effects& fx) {
  if (rules::check_removed(s))
    report_removal(s, reported, fx);
}

/// §5.2: a fresh random election timeout from now, longer for a node of lower priority
/// (node_config::priority).
void arm(election_timer& t, const env& e) {
  auto lo = e.cfg.election_timeout_min.count();
  auto hi = e.cfg.election_timeout_max.count();
  std::uniform_int_distribution<int64_t> dist{lo, hi};
  auto penalty = (hi - lo) * (100 - e.cfg.priority) / 100;
  t.timeout = std::chrono::milliseconds{dist(e.rng) + penalty};
  t.deadline = e.now + t.timeout;
}

/// The running timeout starts again from now (a follower heard from its leader).
void rearm(election_timer& t, const env& e) {
  if (t.timeout.count() == 0)
    return arm(t, e);
  t.deadline = e.now + t.timeout;
}

/// A vote request for term `term` (term + 1 for a pre-vote), with what it says of our log.
pb::RequestVote vote_request(const raft_state& s, uint64_t term, bool pre_vote) {
  pb::RequestVote req;
  req.set_term(term);
  req.set_candidate_id(s.id);
  req.set_last_log_index(s.last_index());
  req.set_last_log_term(s.last_term());
  req.set_pre_vote(pre_vote);
  rules::describe_candidate(s, req);
  return req;
}

} // namespace

uint64_t term_of(const raft_message& m) {
  return std::visit([](const auto& x) -> uint64_t { return x.term(); }, m);
}

reply_value session_reply(uint64_t index, uint64_t term, const std::string& result) {
  pb::SessionResult r;
  if (!r.ParseFromString(result))
    return failure{errc::invalid_request, "the session table's answer is malformed"};
  if (r.error() != 0)
    return failure{static_cast<errc>(r.error()), r.detail()};
  pb::WriteResponse resp;
  resp.set_index(r.duplicate() ? r.index() : index);
  resp.set_term(term);
  resp.set_result(std::move(*r.mutable_result()));
  resp.set_duplicate(r.duplicate());
  return resp;
}

pb::ReadIndexResponse refuse_read_index(const raft_state& s, const pb::ReadIndexRequest& req) {
  pb::ReadIndexResponse resp;
  resp.set_term(s.term);
  resp.set_leader_id(s.id);
  resp.set_id(req.id());
  resp.set_granted(false);
  return resp;
}

pb::InstallSnapshotResponse reject_stale_snapshot(const raft_state& s,
                                                  const pb::InstallSnapshot& req) {
  pb::InstallSnapshotResponse resp;
  resp.set_term(s.term);
  resp.set_follower_id(s.id);
  resp.set_incarnation(s.incarnation);
  resp.set_snapshot_index(req.meta().index());
  resp.set_last_log_index(s.last_index());
  return resp;
}

prelude run_prelude(raft_state& s, const raft_message& m, effects& fx, const env& e) {
  if (auto* req = std::get_if<pb::RequestVote>(&m)) {
    if (rules::candidate_removed(s, *req)) {
      pb::RequestVoteResponse resp;
      resp.set_term(s.term);
      resp.set_voter_id(s.id);
      resp.set_pre_vote(req->pre_vote());
      resp.set_removed(true);
      e.log.info("{} [term {}] tells {} that it was removed from the cluster", s.id, s.term,
                 req->candidate_id());
      tell(fx, req->candidate_id(), resp);
      return prelude::handled;
    }
    if (req->pre_vote())
      return prelude::current; // the term is one the candidate proposes; each role answers
  }
  if (auto* resp = std::get_if<pb::RequestVoteResponse>(&m);
      resp && resp->pre_vote() && resp->granted())
    return prelude::current; // a grant names the proposed term, not the voter's
  if (std::holds_alternative<pb::TimeoutNow>(m))
    return prelude::current; // only the leader of our own term sends it (the follower checks)
  auto term = term_of(m);
  if (term > s.term && std::holds_alternative<pb::AppendEntriesResponse>(m) &&
      CAFRAFT_CANARY("leader_ignores_higher_term"))
    return prelude::current;
  if (term > s.term) {
    rules::observe_term(s, term);
    return prelude::stepped_down;
  }
  if (term == s.term)
    return prelude::current;
  // §5.1: an older term. A request is answered with our term, so that its sender steps down;
  // a response is dropped.
  return std::visit(overloaded{
                        [&](const pb::AppendEntries& req) {
                          if (CAFRAFT_CANARY("follower_accepts_stale_leader"))
                            return prelude::current;
                          answer(fx, req.leader_id(), rules::reject_stale_append(s, req));
                          return prelude::handled;
                        },
                        [&](const pb::InstallSnapshot& req) {
                          answer(fx, req.leader_id(), reject_stale_snapshot(s, req));
                          return prelude::handled;
                        },
                        [&](const pb::RequestVote& req) {
                          answer(fx, req.candidate_id(),
                                 rules::decide_vote(s, req)); // refused: our term
                          return prelude::handled;
                        },
                        [&](const pb::ReadIndexRequest& req) {
                          tell(fx, req.node_id(), refuse_read_index(s, req));
                          return prelude::handled;
                        },
                        [](const auto&) { return prelude::handled; },
                    },
                    m);
}

// -- the follower -----------------------------------------------------------------------------

namespace {

struct follower_step {
  raft_state& s;
  follower_role& r;
  const env& e;
  effects fx;

  // A message of the leader of `term` (at least ours, after the prelude): follow it, and keep
  // the election timer and the pre-vote lease from running out.
  void heard_from_leader(uint64_t term, const std::string& leader) {
    rules::observe_term(s, term);
    if (s.leader_id != leader) {
      fail_reads("the leader changed");
      s.leader_id = leader;
      e.log.info("{} [term {}] follows leader {}", s.id, s.term, s.leader_id);
      fx.push_back(leader_known{s.term, leader, s.address_of(leader)});
    }
    rearm(r.timer, e);
    r.lease_until = e.now + e.cfg.election_timeout_min;
    s.quiesced = false;
  }

  // -- quiescence (node_config::quiesce_after) ---------------------------------------------

  /// The group may not be idle after all: the election timer runs again, so that a leader that
  /// is gone is replaced (one that is there wakes and keeps the timer from running out).
  /// The leader, asked, answers at once if it is there: awake, with its heartbeats; asleep
  /// and still idle, with a marked heartbeat that puts this node back to sleep. A follower
  /// that merely sent a client away therefore does not depose a leader that is there.
  void resume(const char* why) {
    if (!s.quiesced || CAFRAFT_CANARY("quiesced_follower_never_wakes"))
      return;
    s.quiesced = false;
    arm(r.timer, e);
    e.log.info("{} [term {}] wakes: {}", s.id, s.term, why);
    if (s.leader_id.empty() || s.leader_id == s.id)
      return;
    pb::ReadIndexRequest probe;
    probe.set_term(s.term);
    probe.set_node_id(s.id);
    probe.set_probe(true);
    tell(fx, s.leader_id, std::move(probe));
  }

  void on(const wake&) { resume("a client turned up"); }

  void on(const peer_lost& p) {
    if (p.id == s.leader_id)
      resume("the connection to the leader broke");
  }

  void on(const pb::AppendEntries& req) {
    heard_from_leader(req.term(), req.leader_id());
    bool was_resyncing = s.resyncing;
    auto ae = rules::accept_append(s, req);
    // The leader says the group is idle, and our log matches its: after the answer below,
    // nothing until the group wakes. (A log that does not match waits for the leader's next
    // word with its timer running.)
    if (req.quiesce() && ae.response.success()) {
      s.quiesced = true;
      r.timer.deadline =
          e.cfg.quiesce_backstop.count() > 0 ? e.now + e.cfg.quiesce_backstop : time_point::max();
    }
    if (was_resyncing && !s.resyncing)
      e.log.info("{} [term {}] caught up after its log was discarded: votes again", s.id, s.term);
    persist p;
    p.batch.hard_state = rules::take_hard_state(s);
    p.batch.truncate_from = ae.truncated_from;
    p.batch.entries = std::move(ae.appended);
    if (ae.truncated_from > 0)
      e.log.info("{} [term {}] removed conflicting entries from index {}", s.id, s.term,
                 ae.truncated_from);
    if (CAFRAFT_CANARY("append_ack_before_persisted")) { // the answer overtakes the write
      tell(fx, req.leader_id(), std::move(ae.response));
      fx.push_back(std::move(p));
    } else {
      fx.push_back(std::move(p));
      answer(fx, req.leader_id(), std::move(ae.response));
    }
    apply_committed();
    check_removal(s, r.removal_reported, fx);
  }

  void on(const pb::InstallSnapshot& req) {
    heard_from_leader(req.term(), req.leader_id());
    pb::InstallSnapshotResponse resp;
    resp.set_follower_id(s.id);
    resp.set_incarnation(s.incarnation);
    resp.set_snapshot_index(req.meta().index());
    resp.set_term(s.term);
    persist_hard_state(s, fx);
    if (req.meta().index() <= s.commit_index) {
      // Everything the snapshot holds is committed here already (so it matches the leader's).
      resp.set_installed(true);
      resp.set_next_offset(req.meta().size());
      resp.set_last_log_index(s.last_index());
      answer(fx, req.leader_id(), std::move(resp));
      return;
    }
    if (r.chunk_pending)
      return; // one chunk at a time; the leader sends this one again if it is still needed
    r.chunk_pending = true;
    // Storage writes the hard state first: the answer never overtakes the term it carries.
    fx.push_back(store_chunk{req, std::move(resp)});
  }

  // A chunk is stored; when it completed the snapshot, installs it.
  void on(const chunk_stored& c) {
    auto& req = c.req;
    auto& meta = req.meta();
    auto resp = c.resp;
    r.chunk_pending = false;
    resp.set_last_log_index(s.last_index());
    if (!c.complete) {
      if (req.done() && c.next == 0)
        e.log.warn("{} [term {}] snapshot {} from {} failed its checksum; it is sent again", s.id,
                   s.term, meta.index(), req.leader_id());
      resp.set_next_offset(c.next);
      tell(fx, req.leader_id(), std::move(resp));
      return;
    }
    resp.set_next_offset(meta.size());
    resp.set_installed(true);
    if (meta.index() <= s.commit_index) { // entries that arrived meanwhile hold it already
      tell(fx, req.leader_id(), std::move(resp));
      return;
    }
    bool reset = rules::install_snapshot(s, meta);
    e.log.info("{} [term {}] installs snapshot through index {} (term {}, {} bytes) from {}{}",
               s.id, s.term, meta.index(), meta.term(), meta.size(), req.leader_id(),
               reset ? "; its log starts after it" : "");
    persist p;
    p.batch.hard_state = rules::take_hard_state(s); // the end of a resync, when this ends it
    p.batch.snapshot = meta;
    p.batch.reset_log = reset;
    fx.push_back(std::move(p));
    resp.set_last_log_index(s.last_index());
    answer(fx, req.leader_id(), std::move(resp));
    // After the install is asked of storage (the state machine's read of the snapshot writes
    // it first), before any entry after the snapshot is handed to the state machine.
    fx.push_back(restore{meta});
    check_removal(s, r.removal_reported, fx);
  }

  void on(const pb::RequestVote& req) {
    resume("a node campaigns");
    if (req.pre_vote()) { // changes nothing here, so nothing to persist
      bool leader_recent = (!s.leader_id.empty() || e.cfg.lease_reads) && e.now < r.lease_until &&
                           !CAFRAFT_CANARY("pre_vote_ignores_leader_lease");
      tell(fx, req.candidate_id(), rules::decide_pre_vote(s, req, leader_recent));
      return;
    }
    auto resp = rules::decide_vote(s, req);
    persist p;
    p.batch.hard_state = rules::take_hard_state(s);
    if (resp.granted()) {
      arm(r.timer, e); // §5.2: granting a vote resets the timer
      e.log.info("{} [term {}] granted vote to {}", s.id, s.term, req.candidate_id());
    } else {
      e.log.debug("{} [term {}] rejected vote for {} (term {})", s.id, s.term, req.candidate_id(),
                  req.term());
    }
    if (CAFRAFT_CANARY("vote_sent_before_persisted")) { // the vote overtakes its write
      tell(fx, req.candidate_id(), resp);
      fx.push_back(std::move(p));
    } else {
      if (!p.batch.empty())
        fx.push_back(std::move(p));
      answer(fx, req.candidate_id(), std::move(resp));
    }
  }

  // Thesis §3.10: the leader hands its leadership to us; campaign at once, without a pre-vote
  // (the others would refuse it: they heard from the leader just now).
  void on(const pb::TimeoutNow& req) {
    if (req.term() != s.term || !may_campaign_at_all()) {
      e.log.info("{} [term {}] does not take over from {}: it may not campaign", s.id, s.term,
                 req.leader_id());
      return; // the leader's transfer times out
    }
    e.log.info("{} [term {}] takes over the leadership from {}", s.id, s.term, req.leader_id());
    fail_reads("an election starts");
    s.campaign_now = true;
    fx.push_back(become{role_kind::candidate});
  }

  // Responses to a role this node no longer has: the prelude took their term.
  void on(const pb::AppendEntriesResponse&) {}
  void on(const pb::RequestVoteResponse&) {}
  void on(const pb::InstallSnapshotResponse&) {}

  // -- follower reads (READ_FOLLOWER, thesis §6.4) ---------------------------------------------

  /// Asks the leader for its read index; the read is answered from this node's state once it
  /// has applied that index (read_state).
  void on(const read_request& q) {
    resume("a client turned up");
    if (s.cluster_level < features::sessions)
      return fail(fx, q.id, errc::invalid_request,
                  "follower reads need the cluster's feature level " +
                      std::to_string(features::sessions));
    if (s.leader_id.empty() || s.leader_id == s.id)
      return fail(fx, q.id, errc::unknown_leader);
    if (r.read_wait.size() >= e.cfg.max_pending_requests)
      return fail(fx, q.id, errc::overloaded);
    if (CAFRAFT_CANARY("follower_read_skips_read_index")) { // its own commit index may lag
      fx.push_back(read_state{q.id, s.commit_index, q.query});
      return;
    }
    r.read_wait.push_back(follower_role::remote_read{q.id, q.query});
    if (!r.asked)
      ask_read_index();
  }

  /// Asks the leader for its read index, for every read that waits.
  void ask_read_index() {
    if (r.read_wait.empty() || s.leader_id.empty())
      return;
    uint64_t token = 0;
    while (token == 0)
      token = e.rng();
    r.asked = follower_role::read_batch{token, s.term, e.now + e.cfg.election_timeout_max,
                                        std::move(r.read_wait)};
    r.read_wait.clear();
    pb::ReadIndexRequest req;
    req.set_term(s.term);
    req.set_node_id(s.id);
    req.set_id(token);
    tell(fx, s.leader_id, std::move(req));
  }

  void on(const pb::ReadIndexResponse& resp) {
    if (!r.asked || r.asked->token != resp.id())
      return; // answered already, or failed
    auto batch = std::move(*r.asked);
    r.asked.reset();
    for (auto& rd : batch.reads) {
      if (!resp.granted() || resp.term() != batch.term)
        fail(fx, rd.id, errc::unknown_leader, "the leader changed");
      else
        fx.push_back(read_state{rd.id, resp.index(), std::move(rd.query)});
    }
    ask_read_index();
  }

  void on(const pb::ReadIndexRequest& req) { tell(fx, req.node_id(), refuse_read_index(s, req)); }

  /// The reads that wait for the leader fail (the client asks again, or elsewhere).
  void fail_reads(const char* why) {
    if (r.asked)
      for (auto& rd : r.asked->reads)
        fail(fx, rd.id, errc::unknown_leader, why);
    for (auto& rd : r.read_wait)
      fail(fx, rd.id, errc::unknown_leader, why);
    r.asked.reset();
    r.read_wait.clear();
  }

  void expire_reads() {
    if (!r.asked || e.now < r.asked->deadline)
      return;
    for (auto& rd : r.asked->reads)
      fail(fx, rd.id, errc::unknown_leader, "the leader did not give a read index");
    r.asked.reset();
    ask_read_index();
  }

  bool may_campaign_at_all() const {
    return s.self_voter() && !s.resyncing && !s.removed && e.cfg.electable &&
           (!e.cfg.may_campaign || e.cfg.may_campaign(s));
  }

  // Learners, nodes that are resyncing, not electable, or refused by the policy hook never
  // campaign; a leader that just stepped down on request lets one election timeout pass.
  bool may_campaign() {
    if (s.skip_campaign) {
      s.skip_campaign = false;
      return false;
    }
    // A node that an uncommitted configuration removes still campaigns: it may hold that entry
    // alone among the remaining voters (its log is more up to date than theirs), and only a
    // leader can commit it (thesis §4.2.2: it then leads without counting itself, and steps
    // down once the removal is committed).
    bool removal_pending = s.was_member && s.self() == nullptr && s.config.index > s.commit_index;
    return (s.self_voter() || removal_pending) && !s.resyncing && !s.removed && e.cfg.electable &&
           (!e.cfg.may_campaign || e.cfg.may_campaign(s));
  }

  void on(const tick&) {
    expire_reads();
    if (e.now >= r.timer.deadline && s.quiesced)
      resume("nothing from the leader for the quiescence backstop");
    else if (e.now >= r.timer.deadline)
      on(election_timeout{});
  }

  void on(const election_timeout&) {
    if (!may_campaign()) {
      arm(r.timer, e);
      return;
    }
    fail_reads("an election starts");
    e.log.info("{} [term {}] election timeout, leader {} silent", s.id, s.term,
               s.leader_id.empty() ? "unknown" : s.leader_id);
    fx.push_back(become{role_kind::candidate});
  }

  void on(const started&) {
    persist_hard_state(s, fx); // a term learned by the role before us
    arm(r.timer, e);
    s.quiesced = false;
    // It may have acknowledged a leader's lease before it (re)started: it keeps it.
    if (e.cfg.lease_reads)
      r.lease_until = e.now + e.cfg.election_timeout_min;
    check_removal(s, r.removal_reported, fx); // a leader that removed itself hands over to us
  }

  void on(const persisted&) {}
  void on(const compacted& c) { rules::compact(s, c.meta); }
  template <class Other> void on(const Other&) {} // the leader's events

  void on(const raft_message& m) {
    if (run_prelude(s, m, fx, e) == prelude::handled)
      return;
    std::visit([this](const auto& x) { on(x); }, m);
    persist_hard_state(s, fx); // a term the prelude took, when nothing above wrote it
  }

  /// Hands committed entries to the state machine (in order, exactly once: apply_sent only
  /// grows, and the state machine skips what it has applied).
  void apply_committed() {
    auto entries = rules::take_committed(s);
    if (!entries.empty())
      fx.push_back(apply{std::move(entries)});
  }
};

// -- the candidate ----------------------------------------------------------------------------

struct candidate_step {
  raft_state& s;
  candidate_role& r;
  const env& e;
  effects fx;

  void count_vote(const std::string& voter) {
    if (!(r.campaigning || r.pre_voting) || !s.is_voter(voter))
      return;
    r.votes.insert(voter);
    if (r.votes.size() < s.quorum())
      return;
    if (r.pre_voting) {
      e.log.info("{} [term {}] won the pre-vote with {} of {} votes", s.id, s.term, r.votes.size(),
                 s.config.voters());
      r.pre_voting = false;
      r.votes.clear();
      campaign();
      return;
    }
    e.log.info("{} [term {}] won the election with {} of {} votes", s.id, s.term, r.votes.size(),
               s.config.voters());
    fx.push_back(become{role_kind::leader});
  }

  void ask_voters(const pb::RequestVote& req, bool after_writes) {
    for (auto& m : s.config.members)
      if (!m.learner && m.id != s.id)
        fx.push_back(send{m.id, req, after_writes});
  }

  /// Thesis §9.6: asks whether a majority would vote for us in the next term before raising it.
  void pre_campaign() {
    r.pre_voting = true;
    if (CAFRAFT_CANARY("pre_vote_bumps_term")) { // moves to a new term before it asks
      rules::observe_term(s, s.term + 1);
      persist_hard_state(s, fx);
    }
    e.log.info("{} [term {}] asks for pre-votes for term {}", s.id, s.term, s.term + 1);
    arm(r.timer, e);
    ask_voters(vote_request(s, s.term + 1, true), false);
    count_vote(s.id);
  }

  void campaign() {
    s.term += 1;
    s.voted_for = s.id;
    s.leader_id.clear();
    e.log.info("{} [term {}] starts an election", s.id, s.term);
    arm(r.timer, e);
    // §5.2 with thesis §3.8: the vote for ourselves is durable before anyone is asked.
    persist p;
    p.batch.hard_state = rules::take_hard_state(s);
    p.notify = s.term;
    r.vote_write = s.term;
    fx.push_back(std::move(p));
    ask_voters(vote_request(s, s.term, false), true);
  }

  void on(const started&) {
    s.quiesced = false;
    if (e.cfg.pre_vote && !s.campaign_now)
      pre_campaign();
    else
      campaign();
    s.campaign_now = false;
  }

  void on(const persisted& p) {
    if (p.seq != r.vote_write || r.campaigning)
      return;
    r.campaigning = true;
    count_vote(s.id);
  }

  // Split vote or lost messages: try again, in the next term.
  void on(const election_timeout&) { fx.push_back(become{role_kind::candidate}); }
  void on(const tick&) {
    if (e.now >= r.timer.deadline)
      on(election_timeout{});
  }

  void on(const compacted& c) { rules::compact(s, c.meta); }
  template <class Other> void on(const Other&) {} // chunks, the leader's events

  void on(const raft_message& m) {
    if (auto* resp = std::get_if<pb::RequestVoteResponse>(&m); resp && resp->removed()) {
      e.log.warn("{} [term {}] learns from {} that it was removed from the cluster", s.id, s.term,
                 resp->voter_id());
      report_removal(s, r.removal_reported, fx);
      return;
    }
    switch (run_prelude(s, m, fx, e)) {
    case prelude::handled:
      return;
    case prelude::stepped_down: {
      // A request goes to the follower we become; a response has nothing more to say.
      bool request = std::holds_alternative<pb::AppendEntries>(m) ||
                     std::holds_alternative<pb::InstallSnapshot>(m) ||
                     std::holds_alternative<pb::RequestVote>(m);
      fx.push_back(become{role_kind::follower, request});
      return;
    }
    case prelude::current:
      std::visit([this](const auto& x) { on(x); }, m);
    }
  }

  // §5.2: a leader of our term exists.
  void on(const pb::AppendEntries&) { fx.push_back(become{role_kind::follower, true}); }
  void on(const pb::InstallSnapshot&) { fx.push_back(become{role_kind::follower, true}); }

  void on(const pb::RequestVote& req) {
    if (req.pre_vote()) // we campaign ourselves: no leader is recent
      tell(fx, req.candidate_id(), rules::decide_pre_vote(s, req, false));
    else // we voted for ourselves in this term
      tell(fx, req.candidate_id(), rules::decide_vote(s, req));
  }

  void on(const pb::RequestVoteResponse& resp) {
    if (resp.pre_vote() && resp.granted()) {
      if (r.pre_voting && resp.term() == s.term + 1)
        count_vote(resp.voter_id());
    } else if (!resp.pre_vote() && resp.granted()) {
      count_vote(resp.voter_id());
    }
  }

  void on(const pb::AppendEntriesResponse&) {}
  void on(const pb::InstallSnapshotResponse&) {}
  void on(const pb::TimeoutNow&) {} // a candidate campaigns already
  void on(const pb::ReadIndexRequest& req) { tell(fx, req.node_id(), refuse_read_index(s, req)); }
  void on(const pb::ReadIndexResponse&) {} // to the follower this node was
  void on(const read_request& q) { fail(fx, q.id, errc::unknown_leader); }
};

} // namespace

effects step_follower(raft_state& s, follower_role& r, const env& e, const event& ev) {
  return detail::run_step<follower_step>(s, r, e, ev, role_kind::follower);
}

effects step_candidate(raft_state& s, candidate_role& r, const env& e, const event& ev) {
  return detail::run_step<candidate_step>(s, r, e, ev, role_kind::candidate);
}

time_point deadline(const follower_role& r) {
  return r.asked ? std::min(r.timer.deadline, r.asked->deadline) : r.timer.deadline;
}
time_point deadline(const candidate_role& r) {
  return r.timer.deadline;
}

} // namespace cafraft::core
