// The leader's rules (runtime/core.hpp): replication and commit (§5.3, §5.4), ReadIndex reads
// (thesis §6.4), check-quorum (§9.6), membership changes one server at a time (thesis §4.1,
// docs/membership.md) and leadership transfer (thesis §3.10).
//
// Invariants kept here:
//   - commit_index only grows, and only to an entry of its own term by counting replicas
//     (§5.4.2, Figure 8); the leader counts itself only for entries it has made durable
//   - a read is answered only after a majority confirmed this leadership after the read
//     arrived, from a state that includes the commit index of that moment
//   - every pending request is answered (leadership_lost) before it hands over
#include <algorithm>
#include <limits>

#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/core.hpp>
#include <cafraft/runtime/core_detail.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft::core {

using detail::fail;
using detail::tell;

namespace {

using send_mode = replication::send_mode;

pb::MembershipResponse membership_response(const raft_state& s) {
  pb::MembershipResponse resp;
  *resp.mutable_members() = s.config.to_proto().members();
  resp.set_config_index(s.config.index);
  return resp;
}

struct leader_step {
  raft_state& s;
  leader_role& r;
  const env& e;
  effects fx;

  // -- replication ------------------------------------------------------------------------------

  /// Batches everything that arrived before it: proposals of many clients share one write and
  /// one AppendEntries per follower.
  void schedule_flush() {
    if (!r.flush_scheduled) {
      r.flush_scheduled = true;
      fx.push_back(flush_soon{});
    }
  }

  void send_appends(const std::string& peer, send_mode mode) {
    for (auto& ae : r.repl->to_send(peer, mode))
      tell(fx, peer, std::move(ae));
    // One chunk per follower is in flight: memory stays bounded however large the snapshot.
    if (auto offset = r.repl->snapshot_chunk_due(peer, mode))
      fx.push_back(read_chunk{peer, *offset, uint64_t{e.cfg.snapshot_chunk_bytes}});
  }

  void on(const chunk_read& c) {
    if (!r.repl->chunk_read(c.peer, c.meta.index(), c.offset)) {
      send_appends(c.peer, send_mode::entries); // a newer snapshot: start over
      return;
    }
    pb::InstallSnapshot req;
    req.set_term(s.term);
    req.set_leader_id(s.id);
    req.set_offset(c.offset);
    req.set_done(c.offset + c.data.size() >= c.meta.size());
    req.set_data(c.data);
    *req.mutable_meta() = c.meta;
    if (c.offset == 0)
      e.log.info("{} [term {}] sends snapshot {} ({} bytes) to {}", s.id, s.term,
                 req.meta().index(), req.meta().size(), c.peer);
    tell(fx, c.peer, std::move(req));
  }

  /// Hands the entries appended since the last flush to storage.
  void persist_appended() {
    if (r.flushed >= s.last_index())
      return;
    persist p;
    p.batch.entries.assign(
        s.log.begin() + static_cast<std::ptrdiff_t>(r.flushed - s.snapshot_index), s.log.end());
    r.flushed = s.last_index();
    if (CAFRAFT_CANARY("leader_counts_unpersisted_self")) { // counts itself before its write
      fx.push_back(std::move(p));
      if (r.repl->on_local_persisted(r.flushed))
        on_commit();
      return;
    }
    // Followers get the entries while we write them (thesis §10.2.1); we count ourselves in
    // the majority only once they are durable here.
    p.notify = r.flushed;
    fx.push_back(std::move(p));
  }

  void on(const persisted& p) {
    if (r.repl->on_local_persisted(p.seq))
      on_commit();
  }

  void on(const flush_now&) {
    r.flush_scheduled = false;
    auto mode = r.broadcast_due ? send_mode::heartbeat : send_mode::entries;
    r.broadcast_due = false;
    // Followers first: their network hop and fsync overlap ours (thesis §10.2.1).
    for (auto& [peer, ignored] : r.repl->progress())
      send_appends(peer, mode);
    persist_appended();
    serve_reads();
  }

  // -- quiescence (node_config::quiesce_after) -------------------------------------------------

  /// Nothing waits, and every follower holds every entry, committed, and answered during the
  /// quiet period (one that went silent keeps the leader awake, so check-quorum runs): one
  /// last heartbeat (it carries the commit index) tells them all there is.
  bool idle() const {
    if (!r.pending_writes.empty() || !r.pending_reads.empty() || r.pending_change ||
        r.pending_transfer || r.leaving || s.commit_index != s.last_index() ||
        r.repl->local_persisted() < s.last_index())
      return false;
    if (CAFRAFT_CANARY("leader_quiesces_with_lagging_follower")) // a follower may lack entries
      return true;
    for (auto& [id, p] : r.repl->progress()) {
      auto heard = r.last_heard.find(id);
      if (p.departing || p.snapshotting || p.inflight > 0 || p.match != s.last_index() ||
          heard == r.last_heard.end() || heard->second < r.quiet_since)
        return false;
    }
    return true;
  }

  /// A heartbeat marked quiesce to `peer`: nothing comes after it until the group wakes.
  void send_quiesce(const std::string& peer) {
    for (auto& ae : r.repl->to_send(peer, send_mode::heartbeat)) {
      ae.set_quiesce(true);
      tell(fx, peer, std::move(ae));
    }
  }

  void quiesce() {
    for (auto& [peer, ignored] : r.repl->progress())
      send_quiesce(peer);
    s.quiesced = true;
    r.next_heartbeat = time_point::max();
    r.quorum_deadline = time_point::max();
    e.log.info("{} [term {}] quiesces: idle for {} ms", s.id, s.term, e.cfg.quiesce_after.count());
  }

  /// Something happened: the quiet period starts again, and a quiesced leader resumes its
  /// heartbeats (the next flush wakes the followers) and check-quorum.
  void busy(const char* why) {
    r.quiet_since = e.now;
    if (!s.quiesced)
      return;
    s.quiesced = false;
    r.next_heartbeat = e.now + e.cfg.heartbeat_interval;
    if (e.cfg.check_quorum) {
      r.repl->quorum_active(); // what was heard before the quiet period does not count
      r.quorum_deadline = e.now + e.cfg.election_timeout_max;
    }
    r.broadcast_due = true;
    schedule_flush();
    e.log.info("{} [term {}] wakes: {}", s.id, s.term, why);
  }

  void on(const wake&) { busy("a client turned up"); }
  void on(const peer_lost& p) {
    if (r.repl->progress().count(p.id))
      busy("a connection to a member broke");
  }

  void on(const heartbeat_tick&) {
    if (e.cfg.quiesce_after.count() > 0 && e.now - r.quiet_since >= e.cfg.quiesce_after && idle())
      return quiesce();
    if (e.cfg.lease_reads && !r.lease_off) // every heartbeat renews the lease once acknowledged
      r.lease_rounds.emplace(r.repl->new_read_round(), e.now);
    for (auto& [peer, ignored] : r.repl->progress())
      send_appends(peer, send_mode::tick);
    // Removed members are told until they know; one that is down is given up on after a
    // while (it learns from the answer to its vote requests when it comes back).
    auto patience = 2 * e.cfg.election_timeout_max / e.cfg.heartbeat_interval;
    for (auto& id : r.repl->drop_departed(static_cast<uint64_t>(patience)))
      e.log.info("{} [term {}] stops replicating to {}, which left", s.id, s.term, id);
  }

  // -- commit and reads -------------------------------------------------------------------------

  void on_commit() {
    auto entries = rules::take_committed(s);
    if (!entries.empty())
      fx.push_back(apply{std::move(entries), true, false});
    serve_reads();
    on_config_committed();
    maybe_raise_level();
  }

  void on(const applied& a) {
    if (a.barrier) {
      if (r.leaving)
        leave();
      return;
    }
    for (size_t i = 0; i < a.results.size(); ++i) {
      auto j = r.pending_writes.find(a.first + i);
      if (j == r.pending_writes.end())
        continue;
      if (j->second.session) {
        fx.push_back(reply{j->second.id, session_reply(a.first + i, s.term, a.results[i])});
      } else {
        pb::WriteResponse resp;
        resp.set_index(a.first + i);
        resp.set_term(s.term);
        resp.set_result(a.results[i]);
        fx.push_back(reply{j->second.id, std::move(resp)});
      }
      r.pending_writes.erase(j);
    }
  }

  /// The lease: from the beginning of the latest heartbeat round a majority acknowledged. The
  /// voters that acknowledged it refuse pre-votes for election_timeout_min after they did (by
  /// their clocks, which run at most clock_drift_ppm faster than ours).
  void renew_lease() {
    auto confirmed = r.repl->confirmed_read_round();
    while (!r.lease_rounds.empty() && r.lease_rounds.begin()->first <= confirmed) {
      r.lease_start = std::max(r.lease_start, r.lease_rounds.begin()->second);
      r.lease_rounds.erase(r.lease_rounds.begin());
    }
  }

  bool lease_holds() const {
    if (!e.cfg.lease_reads || r.lease_off || r.pending_transfer || r.leaving ||
        r.lease_start == time_point{} || s.commit_index < r.noop_index)
      return false;
    auto span =
        e.cfg.election_timeout_min - e.cfg.election_timeout_min * e.cfg.clock_drift_ppm / 1000000;
    return e.now < r.lease_start + span || CAFRAFT_CANARY("lease_read_after_expiry");
  }

  void serve_reads() {
    renew_lease();
    // The read index is the commit index as it stands, even before our no-op commits.
    bool early = CAFRAFT_CANARY("read_before_own_term_commit");
    if (s.commit_index < r.noop_index && !early)
      return; // our commit index may still lag entries committed in earlier terms
    auto confirmed = CAFRAFT_CANARY("read_index_without_quorum")
                         ? std::numeric_limits<uint64_t>::max() // no majority asked
                         : r.repl->confirmed_read_round();
    while (!r.pending_reads.empty() && r.pending_reads.front().round <= confirmed) {
      auto rd = std::move(r.pending_reads.front());
      r.pending_reads.pop_front();
      auto index = early ? rd.read_index : std::max(rd.read_index, r.noop_index);
      if (!rd.remote.empty()) { // a follower's read: it waits for its own apply
        pb::ReadIndexResponse resp;
        resp.set_term(s.term);
        resp.set_leader_id(s.id);
        resp.set_id(rd.remote_id);
        resp.set_granted(true);
        resp.set_index(index);
        tell(fx, rd.remote, std::move(resp));
        continue;
      }
      fx.push_back(read_state{rd.id, index, std::move(rd.query)});
    }
  }

  bool overloaded() const {
    return r.pending_writes.size() + r.pending_reads.size() >= e.cfg.max_pending_requests;
  }

  void on(const write_request& w) {
    busy("a write");
    if (overloaded())
      return fail(fx, w.id, errc::overloaded);
    if (r.pending_transfer || r.leaving) // thesis §3.10: no new entries while leadership moves
      return fail(fx, w.id, errc::unknown_leader, "leadership transfer in progress");
    pb::LogEntry entry;
    entry.set_index(s.last_index() + 1);
    entry.set_term(s.term);
    entry.set_type(w.type);
    entry.set_data(w.data);
    s.log.push_back(std::move(entry));
    r.pending_writes.emplace(s.last_index(),
                             leader_role::pending_write{w.id, w.type == pb::ENTRY_SESSION});
    schedule_flush();
  }

  void on(const read_request& q) {
    busy("a read");
    if (overloaded())
      return fail(fx, q.id, errc::overloaded);
    if (q.lease && lease_holds()) { // no round trip: the lease says no one else leads
      fx.push_back(read_state{q.id, s.commit_index, q.query});
      return;
    }
    r.pending_reads.push_back(
        leader_role::read{r.repl->new_read_round(), s.commit_index, q.query, q.id, {}, 0});
    r.broadcast_due = true;
    schedule_flush();
  }

  // A follower's read (thesis §6.4): the read index once a majority confirmed this
  // leadership, as for the leader's own reads. A request for another term was refused by the
  // prelude (older) or deposed us (newer).
  void on(const pb::ReadIndexRequest& req) {
    if (req.probe()) { // a follower of a quiesced group woke and asks whether we are there
      auto p = r.repl->progress().find(req.node_id());
      if (s.quiesced && p != r.repl->progress().end() && p->second.match == s.last_index())
        return send_quiesce(req.node_id()); // here, and the group is still idle
      return busy("a follower asks for its leader");
    }
    busy("a follower's read");
    if (overloaded() || !s.config.is_member(req.node_id()))
      return tell(fx, req.node_id(), refuse_read_index(s, req));
    r.pending_reads.push_back(leader_role::read{
        r.repl->new_read_round(), s.commit_index, {}, 0, req.node_id(), req.id()});
    r.broadcast_due = true;
    schedule_flush();
  }
  void on(const pb::ReadIndexResponse&) {} // to the follower this node was

  // -- stepping down ----------------------------------------------------------------------------

  /// Answers every pending request with `code`.
  void fail_pending(errc code) {
    if (r.pending_change)
      fail(fx, r.pending_change->id, code);
    r.pending_change.reset();
    if (r.pending_transfer)
      fail(fx, r.pending_transfer->id, code);
    r.pending_transfer.reset();
    for (auto& [index, w] : r.pending_writes)
      fail(fx, w.id, code);
    r.pending_writes.clear();
    for (auto& rd : r.pending_reads)
      if (rd.remote.empty()) // a follower's read fails there, when the leader changes
        fail(fx, rd.id, code);
    r.pending_reads.clear();
  }

  /// Every way out of leadership: pending requests learn that it was lost, the log as it is
  /// goes to storage before anything the next role writes, and the follower takes over.
  void step_down(bool redispatch = false) {
    fail_pending(errc::leadership_lost);
    persist_appended();
    fx.push_back(become{role_kind::follower, redispatch});
  }

  /// The prelude saw a higher term in `m`. A transfer succeeded when the target's vote request
  /// brought it.
  void step_down_for(const raft_message& m) {
    e.log.info("{} [term {}] steps down: saw a higher term", s.id, s.term);
    auto* vote = std::get_if<pb::RequestVote>(&m);
    if (r.pending_transfer && r.pending_transfer->timeout_now_sent && vote &&
        vote->candidate_id() == r.pending_transfer->target) {
      pb::LeaderInfo info; // the target started the election we asked for
      info.set_id(r.pending_transfer->target);
      info.set_address(s.address_of(r.pending_transfer->target));
      info.set_term(s.term);
      fx.push_back(reply{r.pending_transfer->id, std::move(info)});
      r.pending_transfer.reset();
    }
    bool request = vote || std::holds_alternative<pb::AppendEntries>(m) ||
                   std::holds_alternative<pb::InstallSnapshot>(m);
    step_down(request);
  }

  // Check-quorum: no majority answered for a whole election timeout. Clients are told at once
  // instead of waiting on a leader that cannot commit; the term stays (no vote was cast).
  void on(const quorum_check&) {
    if (r.repl->quorum_active() || CAFRAFT_CANARY("leader_ignores_check_quorum"))
      return;
    e.log.warn("{} [term {}] steps down: no majority answered for {} ms", s.id, s.term,
               e.cfg.election_timeout_max.count());
    s.leader_id.clear();
    step_down();
  }

  void on(const step_down_request& q) {
    e.log.info("{} [term {}] steps down on request", s.id, s.term);
    if (s.quiesced) // heartbeats start the sleeping followers' timers: one of them takes over
      for (auto& [peer, ignored] : r.repl->progress())
        send_appends(peer, send_mode::heartbeat);
    s.leader_id.clear();
    s.skip_campaign = true;
    step_down();
    fx.push_back(reply{q.id, s.term});
  }

  // -- Raft messages of other nodes -------------------------------------------------------------

  void on(const raft_message& m) {
    switch (run_prelude(s, m, fx, e)) {
    case prelude::handled:
      return;
    case prelude::stepped_down:
      return step_down_for(m);
    case prelude::current:
      std::visit([this](const auto& x) { on(x); }, m);
    }
  }

  void on(const pb::AppendEntriesResponse& resp) {
    r.last_heard[resp.follower_id()] = e.now;
    if (s.quiesced && !resp.success()) // its log does not match: it needs what we have
      busy("a follower lacks entries");
    if (r.repl->on_response(resp))
      on_commit();
    if (left())
      return;
    maybe_raise_level();
    send_appends(resp.follower_id(), send_mode::entries);
    serve_reads();
    maybe_promote();
    check_transfer();
  }

  void on(const pb::InstallSnapshotResponse& resp) {
    r.last_heard[resp.follower_id()] = e.now;
    if (r.repl->on_snapshot_response(resp))
      on_commit();
    if (left())
      return;
    send_appends(resp.follower_id(), send_mode::entries);
    maybe_promote();
  }

  void on(const pb::AppendEntries& req) {
    e.log.error("{} [term {}] AppendEntries from {} in our own term", s.id, s.term,
                req.leader_id());
  }
  void on(const pb::InstallSnapshot& req) {
    e.log.error("{} [term {}] InstallSnapshot from {} in our own term", s.id, s.term,
                req.leader_id());
  }

  // A pre-vote never deposes a leader, nor does a candidate of our own term: both are refused,
  // and our term tells the candidate.
  void on(const pb::RequestVote& req) {
    if (s.quiesced && e.cfg.lease_reads) {
      // The sleepers' leases ran out: they may grant this campaign a vote while our next
      // heartbeats renew a lease of ours. No lease reads for the rest of this term.
      r.lease_off = true;
    }
    busy("a node campaigns"); // its heartbeats keep the others' leases (pre-vote refusals)
    pb::RequestVoteResponse resp;
    resp.set_term(s.term);
    resp.set_voter_id(s.id);
    resp.set_granted(false);
    resp.set_pre_vote(req.pre_vote());
    tell(fx, req.candidate_id(), std::move(resp));
  }
  void on(const pb::RequestVoteResponse&) {} // of our own election, or a pre-vote's grant
  void on(const pb::TimeoutNow&) {}          // from a deposed leader: nothing to take over

  /// The step handed over already (a become is among the effects).
  bool left() const {
    return std::any_of(fx.begin(), fx.end(),
                       [](const effect& f) { return std::holds_alternative<become>(f); });
  }

  void on(const compacted& c) {
    // Entries not yet handed to storage stay (a follower's acknowledgement can commit, and the
    // state machine apply, an entry before the leader's own flush).
    if (c.meta.index() <= r.flushed)
      rules::compact(s, c.meta);
  }

  // -- taking office ----------------------------------------------------------------------------

  void on(const started&) {
    s.leader_id = s.id;
    r.repl = std::make_unique<replication>(
        s, replication_limits{e.cfg.max_batch_entries, e.cfg.max_batch_bytes, e.cfg.max_inflight});
    r.flushed = s.last_index();
    // Earlier roles asked storage for these; it writes in order, so by the time an entry of
    // our own term is durable they are too (and only such an entry can be committed).
    r.repl->on_local_persisted(s.last_index());
    if (s.last_index() == 0) {
      // The cluster's first entry records its initial members, so that nodes that join later
      // learn them from the log like every later change.
      r.noop_index = rules::append_config(s, s.config.members).index();
    } else {
      // A no-op of our own term commits what earlier leaders left (§5.4.2, thesis §6.4).
      pb::LogEntry noop;
      noop.set_index(s.last_index() + 1);
      noop.set_term(s.term);
      noop.set_type(pb::ENTRY_NOOP);
      s.log.push_back(noop);
      r.noop_index = noop.index();
    }
    r.broadcast_due = true;
    schedule_flush();
    r.next_heartbeat = e.now + e.cfg.heartbeat_interval;
    r.quiet_since = e.now;
    s.quiesced = false;
    if (e.cfg.check_quorum)
      r.quorum_deadline = e.now + e.cfg.election_timeout_max;
    e.log.info("{} [term {}] became leader (last index {}, commit {})", s.id, s.term,
               s.last_index(), s.commit_index);
  }

  void on(const election_timeout&) {} // a leader has none

  /// What is due now: check-quorum every election_timeout_max (first: a leader that steps down
  /// sends no last heartbeat, which would hold the others back from campaigning), heartbeats
  /// every heartbeat interval, the transfer's deadline.
  void on(const tick&) {
    if (e.now >= r.quorum_deadline) {
      r.quorum_deadline = e.now + e.cfg.election_timeout_max;
      on(quorum_check{});
      if (left())
        return;
    }
    if (e.now >= r.next_heartbeat) {
      r.next_heartbeat = e.now + e.cfg.heartbeat_interval;
      on(heartbeat_tick{});
    }
    if (r.pending_transfer && e.now >= r.pending_transfer->deadline)
      on(transfer_timeout{});
  }
  void on(const chunk_stored&) {} // nor stores chunks

  // -- membership (thesis §4.1, docs/membership.md) ---------------------------------------------

  void finish_change(reply_value outcome) {
    if (!r.pending_change)
      return;
    fx.push_back(reply{r.pending_change->id, std::move(outcome)});
    r.pending_change.reset();
  }

  // -- feature levels (runtime/features.hpp) ------------------------------------------------

  /// The lowest feature level that this leader and every member announced: 0 while one was
  /// not heard from in this term.
  uint32_t supported_level() const {
    uint32_t level = s.feature_level;
    for (auto& m : s.config.members) {
      if (m.id == s.id)
        continue;
      auto& progress = r.repl->progress();
      auto p = progress.find(m.id);
      level = std::min(level, p == progress.end() ? 0u : p->second.feature_level);
    }
    return level;
  }

  /// Once every member supports a level above the one in force, the leader appends the entry
  /// that puts it in force; one at a time, after the no-op of its term is committed.
  void maybe_raise_level() {
    if (s.commit_index < r.noop_index || r.level_index > s.commit_index || r.leaving ||
        r.pending_transfer)
      return;
    // (The canary: the leader goes by its own binary, as if every member were as new.)
    auto level =
        CAFRAFT_CANARY("feature_gate_ignores_members") ? s.feature_level : supported_level();
    // The level entry is itself a feature of level 2: below it there is nothing to record.
    if (level <= s.cluster_level || level <= r.level_sent ||
        level < features::cluster_level_entries)
      return;
    auto& entry = rules::append_cluster_level(s, level);
    r.level_index = entry.index();
    r.level_sent = level;
    e.log.info("{} [term {}] every member supports feature level {}: puts it in force at index {}",
               s.id, s.term, level, entry.index());
    schedule_flush();
  }

  void append_config(std::vector<member> next, const std::string& why) {
    auto& entry = rules::append_config(s, std::move(next));
    e.log.info("{} [term {}] {} (configuration at index {}: {} voters, {} members)", s.id, s.term,
               why, entry.index(), s.config.voters(), s.config.members.size());
    r.repl->on_config_change();
    schedule_flush();
  }

  bool change_allowed() const {
    return rules::config_change_allowed(s, r.noop_index) && !r.pending_transfer && !r.leaving;
  }

  // Runs the waiting change when its turn has come: one uncommitted configuration at a time,
  // and only after an entry of this term is committed.
  void try_change() {
    if (!r.pending_change || r.pending_change->index > 0 || !change_allowed())
      return;
    auto& c = *r.pending_change;
    auto next = s.config.members;
    if (c.join) {
      auto& req = *c.join;
      if (auto m = s.config.find(req.id())) {
        if (m->address != req.address())
          return finish_change(
              failure{errc::duplicate_member,
                      "node id " + req.id() + " is already a member at " + m->address});
        if (m->incarnation == any_incarnation && req.incarnation() != 0) {
          // Added by an operator before the node started: the first node to join takes it.
          for (auto& n : next)
            if (n.id == req.id())
              n.incarnation = req.incarnation();
          c.index = s.last_index() + 1;
          return append_config(std::move(next),
                               "gives " + req.id() + " the incarnation it joined with");
        }
        if (req.incarnation() != 0 && m->incarnation != req.incarnation())
          return finish_change(failure{errc::missing_data,
                                       "node " + req.id() +
                                           " is a member but came back without its data; remove it "
                                           "first (leave " +
                                           req.id() + "), then let it join again"});
        return finish_change(membership_response(s)); // a retry: already done
      }
      // An operator's add (incarnation 0) waits for the node to join and claim it.
      next.push_back(member{req.id(), req.address(), true,
                            req.incarnation() == 0 ? any_incarnation : req.incarnation()});
      c.index = s.last_index() + 1;
      return append_config(std::move(next),
                           "adds " + req.id() + " at " + req.address() + " as a learner");
    }
    auto& id = c.leave.id();
    if (!s.config.is_member(id))
      return finish_change(membership_response(s)); // gone already
    if (s.config.is_voter(id) && s.config.voters() == 1)
      return finish_change(
          failure{errc::invalid_request, "cannot remove " + id + ", the last voter"});
    next.erase(
        std::remove_if(next.begin(), next.end(), [&](const member& m) { return m.id == id; }),
        next.end());
    c.index = s.last_index() + 1;
    append_config(std::move(next), "removes " + id);
  }

  // A learner whose log has caught up becomes a voter, so that adding a node never stalls
  // commits (it is not counted before it can keep up).
  void maybe_promote() {
    if (!change_allowed() || (r.pending_change && r.pending_change->index > 0))
      return;
    auto& progress = r.repl->progress();
    for (auto& m : s.config.members) {
      if (!m.learner)
        continue;
      auto i = progress.find(m.id);
      if (i == progress.end())
        continue;
      auto match = i->second.match;
      if (match < s.config.index || match + e.cfg.learner_promote_lag < s.commit_index)
        continue;
      auto next = s.config.members;
      for (auto& n : next)
        if (n.id == m.id)
          n.learner = false;
      return append_config(std::move(next), "promotes " + m.id + " to voter (caught up at " +
                                                std::to_string(match) + ")");
    }
  }

  void on(const change_request& c) {
    busy("a membership change");
    if (r.pending_change)
      return fail(fx, c.id, errc::config_change_in_progress);
    // A node's own join (an operator's add has no incarnation) from a binary that cannot read
    // what the cluster writes now: refused, naming both levels.
    // (0: a request that does not say, as from a binary older than feature levels.)
    if (c.join && c.join->incarnation() != 0 && c.join->feature_level() != 0 &&
        c.join->feature_level() < s.cluster_level)
      return fail(fx, c.id, errc::invalid_request,
                  "node " + c.join->id() + " supports feature level " +
                      std::to_string(c.join->feature_level()) + ", the cluster has level " +
                      std::to_string(s.cluster_level) + " in force: upgrade its binary");
    r.pending_change = leader_role::change{c.join, c.leave, c.id, 0};
    try_change();
  }

  void on_config_committed() {
    if (r.pending_change && r.pending_change->index > 0 &&
        s.commit_index >= r.pending_change->index)
      finish_change(membership_response(s));
    if (!r.leaving && !CAFRAFT_CANARY("removed_leader_keeps_leading") && rules::check_removed(s)) {
      // Thesis §4.2.2: a leader that removed itself steps down once that is committed. First
      // the writes committed so far get their results (the barrier comes after them), then the
      // most up-to-date voter is told to take over, so that the cluster is not left waiting
      // for an election timeout.
      r.leaving = true;
      e.log.info("{} [term {}] removed itself from the cluster: steps down", s.id, s.term);
      fx.push_back(apply{{}, true, true});
      return;
    }
    try_change();
    maybe_promote();
  }

  void leave() {
    fail_pending(errc::leadership_lost);
    if (auto next = best_successor(); !next.empty())
      send_timeout_now(next);
    s.leader_id.clear();
    step_down();
  }

  // -- leadership transfer (thesis §3.10) -------------------------------------------------------

  /// The most up-to-date other voter: the one a removed or transferring leader hands over to.
  std::string best_successor() const {
    std::string best;
    uint64_t best_match = 0;
    for (auto& [id, p] : r.repl->progress())
      if (s.config.is_voter(id) && (best.empty() || p.match > best_match)) {
        best = id;
        best_match = p.match;
      }
    return best;
  }

  void send_timeout_now(const std::string& target) {
    r.lease_off = true; // the target's election does not wait for the voters' leases
    pb::TimeoutNow tn;
    tn.set_term(s.term);
    tn.set_leader_id(s.id);
    tell(fx, target, std::move(tn));
  }

  /// Sends TimeoutNow once the transfer's target has every entry.
  void check_transfer() {
    if (!r.pending_transfer || r.pending_transfer->timeout_now_sent)
      return;
    auto& progress = r.repl->progress();
    auto i = progress.find(r.pending_transfer->target);
    if (i == progress.end() || i->second.match != s.last_index())
      return;
    e.log.info("{} [term {}] hands its leadership to {}", s.id, s.term, r.pending_transfer->target);
    r.pending_transfer->timeout_now_sent = true;
    send_timeout_now(r.pending_transfer->target);
  }

  void on(const transfer_request& t) {
    busy("a leadership transfer");
    auto target = t.target.empty() ? best_successor() : t.target;
    if (target == s.id) {
      pb::LeaderInfo info;
      info.set_id(s.id);
      info.set_address(s.address_of(s.id));
      info.set_term(s.term);
      fx.push_back(reply{t.id, std::move(info)});
    } else if (r.pending_transfer) {
      fail(fx, t.id, errc::overloaded, "a leadership transfer is in progress");
    } else if (target.empty() || !s.is_voter(target)) {
      fail(fx, t.id, errc::invalid_request,
           target.empty() ? "no other voter to hand the leadership to"
                          : target + " is not a voter");
    } else {
      r.pending_transfer =
          leader_role::transfer{target, t.id, false, e.now + e.cfg.election_timeout_max};
      check_transfer();
      if (r.pending_transfer && !r.pending_transfer->timeout_now_sent)
        send_appends(target, send_mode::heartbeat);
    }
  }

  void on(const transfer_timeout&) {
    if (!r.pending_transfer)
      return;
    e.log.warn("{} [term {}] leadership transfer to {} did not complete; keeps leading", s.id,
               s.term, r.pending_transfer->target);
    fail(fx, r.pending_transfer->id, errc::timeout,
         "leadership transfer to " + r.pending_transfer->target + " did not complete in time");
    r.pending_transfer.reset();
    try_change(); // changes held back during the transfer go on
    maybe_promote();
  }
};

} // namespace

effects step_leader(raft_state& s, leader_role& r, const env& e, const event& ev) {
  return detail::run_step<leader_step>(s, r, e, ev, role_kind::leader);
}

time_point deadline(const leader_role& r) {
  auto t = std::min(r.next_heartbeat, r.quorum_deadline);
  return r.pending_transfer ? std::min(t, r.pending_transfer->deadline) : t;
}

} // namespace cafraft::core
