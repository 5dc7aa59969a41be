// Leader: one actor per term of leadership.
//
//   owns      the Raft state while it leads, and every pending client request
//   receives  proposals (put, delete, propose), reads, AppendEntriesResponse and
//             InstallSnapshotResponse, its heartbeat timer, compaction after the state machine's
//             snapshots, and messages of other nodes that may depose it
//   sends     AppendEntries through the peer actors (batched, pipelined), the snapshot in chunks
//             to followers that need entries it has dropped, committed entries to the state
//             machine, answers to clients after apply
//   invariants
//     - commit_index only grows, and only to an entry of its own term by counting replicas
//       (§5.4.2, Figure 8); the leader counts itself only for entries it has made durable
//     - a read is answered only after a majority confirmed this leadership after the read
//       arrived, from a state that includes the commit index of that moment (thesis §6.4)
//     - every pending request is answered (leadership_lost) before it hands over
//   becomes   follower on any message of a higher term
//
//     candidate --won--> leader --higher term--> follower
//
// Membership changes and leadership transfer are in actors/leader_membership.cpp; the state
// both share is in actors/leader_state.hpp.
#include <algorithm>
#include <limits>

#include "actors/executor.hpp"
#include "actors/leader_state.hpp"
#include "actors/roles.hpp"
#include "runtime/canary.hpp"

namespace cafraft {

namespace leader_detail {

/// Batches everything that arrived before it: proposals of many clients share one write and
/// one AppendEntries per follower.
void schedule_flush(leader_ptr self) {
  if (!self->state.flush_scheduled) {
    self->state.flush_scheduled = true;
    self->send(self, flush_atom::value);
  }
}

/// Reads the chunk of the snapshot at `offset` from storage and sends it to `peer` (§7). One
/// chunk per follower is in flight: memory stays bounded however large the snapshot is.
void send_chunk(leader_ptr self, const std::string& peer, uint64_t offset) {
  auto& st = self->state;
  self->request(st.ctx.storage, caf::infinite, snapshot_read_atom::value, offset,
                uint64_t{st.ctx.cfg->snapshot_chunk_bytes})
      .then(
          [self, peer, offset](pb::SnapshotMeta& meta, std::string& data) {
            auto& ls = self->state;
            if (ls.retired)
              return;
            if (!ls.repl->chunk_read(peer, meta.index(), offset)) {
              send_appends(self, peer, send_mode::entries); // a newer snapshot: start over
              return;
            }
            pb::InstallSnapshot req;
            req.set_term(ls.rs->term);
            req.set_leader_id(ls.rs->id);
            req.set_offset(offset);
            req.set_done(offset + data.size() >= meta.size());
            req.set_data(std::move(data));
            *req.mutable_meta() = std::move(meta);
            if (offset == 0)
              ls.ctx.log->info("{} [term {}] sends snapshot {} ({} bytes) to {}", ls.rs->id,
                               ls.rs->term, req.meta().index(), req.meta().size(), peer);
            send_to(self, peer, std::move(req));
          },
          [self](caf::error& e) {
            self->state.ctx.log->error("{} cannot read its snapshot: {}", self->state.ctx.cfg->id,
                                       render(e));
          });
}

void send_appends(leader_ptr self, const std::string& peer, send_mode mode) {
  auto& repl = *self->state.repl;
  for (auto& ae : repl.to_send(peer, mode))
    send_to(self, peer, std::move(ae));
  if (auto offset = repl.snapshot_chunk_due(peer, mode))
    send_chunk(self, peer, *offset);
}

void serve_reads(leader_ptr self) {
  auto& st = self->state;
  // The read index is the commit index as it stands, even before our no-op commits.
  bool early = CAFRAFT_CANARY("read_before_own_term_commit");
  if (st.rs->commit_index < st.noop_index && !early)
    return; // our commit index may still lag entries committed in earlier terms
  auto confirmed = CAFRAFT_CANARY("read_index_without_quorum")
                       ? std::numeric_limits<uint64_t>::max() // no majority asked
                       : st.repl->confirmed_read_round();
  while (!st.pending_reads.empty() && st.pending_reads.front().round <= confirmed) {
    auto r = std::move(st.pending_reads.front());
    st.pending_reads.pop_front();
    read_from_state_machine(self, r.rp,
                            early ? r.read_index : std::max(r.read_index, st.noop_index), r.key);
  }
}

void on_commit(leader_ptr self) {
  auto& st = self->state;
  auto entries = rules::take_committed(*st.rs);
  if (!entries.empty()) {
    auto first = entries.front().index();
    auto term = st.rs->term;
    self->request(st.ctx.state_machine, caf::infinite, apply_atom::value, std::move(entries))
        .then([self, first, term](std::vector<std::string>& results) {
          auto& pending = self->state.pending_writes;
          for (size_t i = 0; i < results.size(); ++i) {
            auto j = pending.find(first + i);
            if (j == pending.end())
              continue;
            pb::WriteResponse resp;
            resp.set_index(first + i);
            resp.set_term(term);
            resp.set_result(std::move(results[i]));
            j->second.deliver(std::move(resp));
            pending.erase(j);
          }
        });
  }
  serve_reads(self);
  on_config_committed(self);
}

// Hands the entries appended since the last flush to storage.
void persist_appended(leader_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (st.flushed < s.last_index()) {
    persist_batch batch;
    batch.entries.assign(s.log.begin() + static_cast<std::ptrdiff_t>(st.flushed - s.snapshot_index),
                         s.log.end());
    st.flushed = s.last_index();
    auto upto = st.flushed;
    if (CAFRAFT_CANARY("leader_counts_unpersisted_self")) { // counts itself before its write
      if (st.repl->on_local_persisted(upto))
        on_commit(self);
      persist_then(self, std::move(batch), [] {});
      return;
    }
    // Followers get the entries while we write them (thesis §10.2.1); we count ourselves in
    // the majority only once they are durable here.
    persist_then(self, std::move(batch), [self, upto] {
      if (self->state.retired)
        return;
      guard g{self, kind};
      if (self->state.repl->on_local_persisted(upto))
        on_commit(self);
    });
  }
}

void flush(leader_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  auto mode = st.broadcast_due ? send_mode::heartbeat : send_mode::entries;
  st.broadcast_due = false;
  // Followers first: their network hop and fsync overlap ours (thesis §10.2.1).
  for (auto& [peer, ignored] : st.repl->progress())
    send_appends(self, peer, mode);
  persist_appended(self);
  serve_reads(self);
}

void fail_pending(leader_ptr self, const caf::error& why) {
  auto& st = self->state;
  if (st.change) {
    st.change->rp.deliver(why);
    st.change.reset();
  }
  if (st.transfer) {
    st.transfer->rp.deliver(why);
    st.transfer.reset();
  }
  for (auto& [index, rp] : st.pending_writes)
    rp.deliver(why);
  st.pending_writes.clear();
  for (auto& r : st.pending_reads)
    r.rp.deliver(why);
  st.pending_reads.clear();
}

/// The term prelude (core::run_prelude) saw a higher term in `why`: the leader steps down and
/// a request goes on to the follower. A transfer succeeded when the target's vote request
/// brought the new term.
void step_down(leader_ptr self, core::raft_message why) {
  auto& st = self->state;
  auto& s = *st.rs;
  st.ctx.log->info("{} [term {}] steps down: saw a higher term", s.id, s.term);
  auto* vote = std::get_if<pb::RequestVote>(&why);
  if (st.transfer && st.transfer->timeout_now_sent && vote &&
      vote->candidate_id() == st.transfer->target) {
    // The target started the election we asked for.
    pb::LeaderInfo info;
    info.set_id(st.transfer->target);
    info.set_address(s.address_of(st.transfer->target));
    info.set_term(s.term);
    st.transfer->rp.deliver(std::move(info));
    st.transfer.reset();
  }
  fail_pending(self, make_error(errc::leadership_lost));
  // The log goes to the next role as it is, so what it holds must reach storage, before
  // anything the next role writes.
  persist_appended(self);
  hand_over(self, role_kind::follower);
  bool request = vote || std::holds_alternative<pb::AppendEntries>(why) ||
                 std::holds_alternative<pb::InstallSnapshot>(why);
  if (request)
    std::visit([&](auto& m) { self->send(st.ctx.node, std::move(m)); }, why);
}

// Check-quorum: no majority answered for a whole election timeout. Clients are told at once
// instead of waiting on a leader that cannot commit; the term stays (no vote was cast).
void step_down_without_quorum(leader_ptr self) {
  auto& s = *self->state.rs;
  self->state.ctx.log->warn("{} [term {}] steps down: no majority answered for {} ms", s.id, s.term,
                            self->state.ctx.cfg->election_timeout_max.count());
  fail_pending(self, make_error(errc::leadership_lost));
  s.leader_id.clear();
  persist_appended(self);
  hand_over(self, role_kind::follower);
}

/// Every Raft message another node sends the leader: the term prelude first
/// (core::run_prelude), then what a leader does with a message of its own term.
void on_raft_message(leader_ptr self, core::raft_message m) {
  step_guard<inspected<leader_state>> g{self, role_kind::leader};
  auto& st = self->state;
  auto& s = *st.rs;
  core::effects fx;
  auto verdict = core::run_prelude(s, m, fx, core_env(self));
  execute(self, std::move(fx), nullptr);
  if (verdict == core::prelude::handled)
    return;
  if (verdict == core::prelude::stepped_down)
    return step_down(self, std::move(m));
  std::visit(
      core::overloaded{
          [&](const pb::AppendEntriesResponse& resp) {
            st.last_heard[resp.follower_id()] = self->clock().now();
            if (st.repl->on_response(resp))
              on_commit(self);
            if (st.retired)
              return;
            send_appends(self, resp.follower_id(), send_mode::entries);
            serve_reads(self);
            maybe_promote(self);
            check_transfer(self);
          },
          [&](const pb::InstallSnapshotResponse& resp) {
            st.last_heard[resp.follower_id()] = self->clock().now();
            if (st.repl->on_snapshot_response(resp))
              on_commit(self);
            if (st.retired)
              return;
            send_appends(self, resp.follower_id(), send_mode::entries);
            maybe_promote(self);
          },
          [&](const pb::AppendEntries& req) {
            st.ctx.log->error("{} [term {}] AppendEntries from {} in our own term", s.id, s.term,
                              req.leader_id());
          },
          [&](const pb::InstallSnapshot& req) {
            st.ctx.log->error("{} [term {}] InstallSnapshot from {} in our own term", s.id, s.term,
                              req.leader_id());
          },
          [&](const pb::RequestVote& req) {
            // A pre-vote never deposes a leader, nor does a candidate of our own term: both are
            // refused, and our term tells the candidate.
            pb::RequestVoteResponse resp;
            resp.set_term(s.term);
            resp.set_voter_id(s.id);
            resp.set_granted(false);
            resp.set_pre_vote(req.pre_vote());
            send_to(self, req.candidate_id(), resp);
          },
          [](const pb::RequestVoteResponse&) {}, // of our own election, or a pre-vote's grant
          [](const pb::TimeoutNow&) {},          // only for followers
      },
      m);
}

void arm_check_quorum(leader_ptr self) {
  if (self->state.ctx.cfg->check_quorum)
    self->delayed_send(self, self->state.ctx.cfg->election_timeout_max, check_quorum_atom::value,
                       ++self->state.quorum_gen);
}

caf::response_promise propose(leader_ptr self, pb::EntryType type, std::string data) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto rp = self->make_response_promise();
  if (st.pending_writes.size() + st.pending_reads.size() >= st.ctx.cfg->max_pending_requests) {
    rp.deliver(make_error(errc::overloaded));
    return rp;
  }
  if (st.transfer || st.leaving) { // thesis §3.10: no new entries while the leadership moves
    rp.deliver(make_error(errc::unknown_leader, "leadership transfer in progress"));
    return rp;
  }
  pb::LogEntry e;
  e.set_index(s.last_index() + 1);
  e.set_term(s.term);
  e.set_type(type);
  e.set_data(std::move(data));
  s.log.push_back(std::move(e));
  st.pending_writes.emplace(s.last_index(), rp);
  schedule_flush(self);
  return rp;
}

caf::response_promise reject(leader_ptr self, std::string why) {
  auto rp = self->make_response_promise();
  rp.deliver(make_error(errc::invalid_request, std::move(why)));
  return rp;
}

void arm_heartbeat(leader_ptr self) {
  self->delayed_send(self, self->state.ctx.cfg->heartbeat_interval, heartbeat_atom::value,
                     ++self->state.timer_gen);
}

void start_leading(leader_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto& cfg = *st.ctx.cfg;
  s.leader_id = s.id;
  // Clients get disk_full or storage_failed at once, not a timeout.
  st.on_storage_failure = [self](const caf::error& e) { fail_pending(self, e); };
  st.repl = std::make_unique<replication>(
      s, replication_limits{cfg.max_batch_entries, cfg.max_batch_bytes, cfg.max_inflight});
  st.flushed = s.last_index();
  // Earlier roles asked storage for these; it writes in order, so by the time an entry of
  // our own term is durable they are too (and only such an entry can be committed).
  st.repl->on_local_persisted(s.last_index());
  if (s.last_index() == 0) {
    // The cluster's first entry records its initial members, so that nodes that join later
    // learn them from the log like every later change.
    st.noop_index = rules::append_config(s, s.config.members).index();
  } else {
    // A no-op of our own term commits what earlier leaders left (§5.4.2, thesis §6.4).
    pb::LogEntry noop;
    noop.set_index(s.last_index() + 1);
    noop.set_term(s.term);
    noop.set_type(pb::ENTRY_NOOP);
    s.log.push_back(noop);
    st.noop_index = noop.index();
  }
  st.broadcast_due = true;
  schedule_flush(self);
  arm_heartbeat(self);
  arm_check_quorum(self);
  st.ctx.log->info("{} [term {}] became leader (last index {}, commit {})", s.id, s.term,
                   s.last_index(), s.commit_index);
}

caf::behavior leader_impl(leader_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  start_leading(self);
  return caf::message_handler{
      [self](flush_atom) {
        guard g{self, kind};
        flush(self);
      },
      [self](heartbeat_atom, uint64_t gen) {
        if (gen != self->state.timer_gen)
          return;
        guard g{self, kind};
        auto& st = self->state;
        for (auto& [peer, ignored] : st.repl->progress())
          send_appends(self, peer, send_mode::tick);
        // Removed members are told until they know; one that is down is given up on after a
        // while (it learns from the answer to its vote requests when it comes back).
        auto patience = 2 * st.ctx.cfg->election_timeout_max / st.ctx.cfg->heartbeat_interval;
        for (auto& id : st.repl->drop_departed(static_cast<uint64_t>(patience)))
          st.ctx.log->info("{} [term {}] stops replicating to {}, which left", st.rs->id,
                           st.rs->term, id);
        arm_heartbeat(self);
      },
      [self](pb::AppendEntriesResponse& m) { on_raft_message(self, std::move(m)); },
      [self](pb::InstallSnapshotResponse& m) { on_raft_message(self, std::move(m)); },
      [self](pb::InstallSnapshot& m) { on_raft_message(self, std::move(m)); },
      [self](pb::AppendEntries& m) { on_raft_message(self, std::move(m)); },
      [self](pb::RequestVote& m) { on_raft_message(self, std::move(m)); },
      [self](pb::RequestVoteResponse& m) { on_raft_message(self, std::move(m)); },
      [self](compact_atom, const pb::SnapshotMeta& meta) {
        guard g{self, kind};
        // Entries not yet handed to storage stay (a follower's acknowledgement can commit, and
        // the state machine apply, an entry before the leader's own flush).
        if (meta.index() <= self->state.flushed)
          rules::compact(*self->state.rs, meta);
      },
      [self](check_quorum_atom, uint64_t gen) {
        if (gen != self->state.quorum_gen)
          return;
        guard g{self, kind};
        if (!self->state.repl->quorum_active() && !CAFRAFT_CANARY("leader_ignores_check_quorum"))
          return step_down_without_quorum(self);
        arm_check_quorum(self);
      },
      [self](pb::PutRequest& req) {
        guard g{self, kind};
        if (req.key().empty())
          return reject(self, "empty key");
        pb::KvCommand cmd;
        *cmd.mutable_put() = std::move(req);
        return propose(self, pb::ENTRY_COMMAND, cmd.SerializeAsString());
      },
      [self](pb::DeleteRequest& req) {
        guard g{self, kind};
        if (req.key().empty())
          return reject(self, "empty key");
        pb::KvCommand cmd;
        *cmd.mutable_del() = std::move(req);
        return propose(self, pb::ENTRY_COMMAND, cmd.SerializeAsString());
      },
      [self](pb::CasRequest& req) {
        guard g{self, kind};
        if (req.key().empty())
          return reject(self, "empty key");
        pb::KvCommand cmd;
        *cmd.mutable_cas() = std::move(req);
        return propose(self, pb::ENTRY_COMMAND, cmd.SerializeAsString());
      },
      [self](pb::ProposeRequest& req) {
        guard g{self, kind};
        return propose(self, pb::ENTRY_COMMAND, std::move(*req.mutable_data()));
      },
      [self](const pb::GetRequest& req) {
        guard g{self, kind};
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (req.stale()) {
          read_from_state_machine(self, rp, 0, req.key());
        } else if (st.pending_writes.size() + st.pending_reads.size() >=
                   st.ctx.cfg->max_pending_requests) {
          rp.deliver(make_error(errc::overloaded));
        } else {
          st.pending_reads.push_back(
              pending_read{st.repl->new_read_round(), st.rs->commit_index, req.key(), rp});
          st.broadcast_due = true;
          schedule_flush(self);
        }
        return rp;
      },
      [self](status_atom) { return make_status(*self->state.rs, kind); },
      [self](config_change_atom, pb::JoinRequest& req) {
        guard g{self, kind};
        pending_change c;
        c.join = std::move(req);
        return request_change(self, std::move(c));
      },
      [self](config_change_atom, pb::LeaveRequest& req) {
        guard g{self, kind};
        pending_change c;
        c.leave = std::move(req);
        return request_change(self, std::move(c));
      },
      [self](const pb::TransferLeadershipRequest& req) {
        guard g{self, kind};
        auto& st = self->state;
        auto& s = *st.rs;
        auto rp = self->make_response_promise();
        auto target = req.target().empty() ? best_successor(self) : req.target();
        if (target == s.id) {
          pb::LeaderInfo info;
          info.set_id(s.id);
          info.set_address(s.address_of(s.id));
          info.set_term(s.term);
          rp.deliver(std::move(info));
        } else if (st.transfer) {
          rp.deliver(make_error(errc::overloaded, "a leadership transfer is in progress"));
        } else if (target.empty() || !s.is_voter(target)) {
          rp.deliver(make_error(errc::invalid_request,
                                target.empty() ? "no other voter to hand the leadership to"
                                               : target + " is not a voter"));
        } else {
          st.transfer = pending_transfer{target, rp, false};
          self->delayed_send(self, st.ctx.cfg->election_timeout_max, transfer_timeout_atom::value,
                             ++st.transfer_gen);
          check_transfer(self);
          if (st.transfer && !st.transfer->timeout_now_sent)
            send_appends(self, target, send_mode::heartbeat);
        }
        return rp;
      },
      [self](transfer_timeout_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.transfer_gen || !st.transfer)
          return;
        guard g{self, kind};
        st.ctx.log->warn("{} [term {}] leadership transfer to {} did not complete; keeps leading",
                         st.rs->id, st.rs->term, st.transfer->target);
        st.transfer->rp.deliver(make_error(errc::timeout, "leadership transfer to " +
                                                              st.transfer->target +
                                                              " did not complete in time"));
        st.transfer.reset();
        try_change(self); // changes held back during the transfer go on
        maybe_promote(self);
      },
      [self](step_down_atom) {
        guard g{self, kind};
        auto& s = *self->state.rs;
        self->state.ctx.log->info("{} [term {}] steps down on request", s.id, s.term);
        fail_pending(self, make_error(errc::leadership_lost));
        s.leader_id.clear();
        s.skip_campaign = true;
        persist_appended(self);
        auto term = s.term;
        hand_over(self, role_kind::follower);
        return term;
      },
      [self](inspect_atom) {
        auto& st = self->state;
        auto fields = role_fields(*st.rs);
        auto now = self->clock().now();
        for (auto& [id, p] : st.repl->progress()) {
          auto heard = st.last_heard.find(id);
          fields.emplace_back(
              "peer." + id + ".last_contact_ms",
              heard == st.last_heard.end()
                  ? std::string{"never"}
                  : std::to_string(
                        std::chrono::duration_cast<std::chrono::milliseconds>(now - heard->second)
                            .count()));
          fields.emplace_back("peer." + id + ".match", std::to_string(p.match));
          fields.emplace_back("peer." + id + ".next", std::to_string(p.next));
          fields.emplace_back("peer." + id + ".inflight", std::to_string(p.inflight));
          fields.emplace_back("peer." + id + ".state", p.departing      ? "departing"
                                                       : p.snapshotting ? "snapshot"
                                                       : p.probing      ? "probe"
                                                                        : "replicate");
        }
        fields.emplace_back("pending_writes", std::to_string(st.pending_writes.size()));
        fields.emplace_back("pending_reads", std::to_string(st.pending_reads.size()));
        return make_inspection(self, "leader", std::move(fields));
      },
      [](const pb::TimeoutNow&) {
        // From a deposed leader of an older term: nothing to take over.
      },
  }
      .or_else(peer_handlers(self));
}

} // namespace leader_detail

caf::actor spawn_leader(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                        uint64_t seed) {
  return node->spawn<caf::linked>(leader_detail::leader_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
