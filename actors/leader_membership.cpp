// The leader's membership changes (docs/membership.md) and leadership transfer (thesis §3.10):
// one change at a time, learners promoted once they caught up, a leader that removed itself
// steps down and hands over.
#include <algorithm>

#include "actors/leader_state.hpp"
#include "runtime/canary.hpp"

namespace cafraft::leader_detail {

pb::MembershipResponse membership_response(const raft_state& s) {
  pb::MembershipResponse resp;
  *resp.mutable_members() = s.config.to_proto().members();
  resp.set_config_index(s.config.index);
  return resp;
}

void finish_change(leader_ptr self, caf::expected<pb::MembershipResponse> outcome) {
  auto& st = self->state;
  if (!st.change)
    return;
  if (outcome)
    st.change->rp.deliver(std::move(*outcome));
  else
    st.change->rp.deliver(outcome.error());
  st.change.reset();
}

void append_config(leader_ptr self, std::vector<member> next, const std::string& why) {
  auto& st = self->state;
  auto& s = *st.rs;
  auto& e = rules::append_config(s, std::move(next));
  st.ctx.log->info("{} [term {}] {} (configuration at index {}: {} voters, {} members)", s.id,
                   s.term, why, e.index(), s.config.voters(), s.config.members.size());
  st.repl->on_config_change();
  schedule_flush(self);
}

// Runs the waiting change when its turn has come: one uncommitted configuration at a time, and
// only after an entry of this term is committed (thesis §4.1).
void try_change(leader_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (!st.change || st.change->index > 0 || !rules::config_change_allowed(s, st.noop_index) ||
      st.transfer || st.leaving)
    return;
  auto& c = *st.change;
  auto next = s.config.members;
  if (c.join) {
    auto& req = *c.join;
    if (auto m = s.config.find(req.id())) {
      if (m->address != req.address())
        return finish_change(
            self, make_error(errc::duplicate_member,
                             "node id " + req.id() + " is already a member at " + m->address));
      if (m->incarnation == any_incarnation && req.incarnation() != 0) {
        // Added by an operator before the node started: the first node to join takes it.
        for (auto& n : next)
          if (n.id == req.id())
            n.incarnation = req.incarnation();
        c.index = s.last_index() + 1;
        append_config(self, std::move(next),
                      "gives " + req.id() + " the incarnation it joined with");
        return;
      }
      if (req.incarnation() != 0 && m->incarnation != req.incarnation())
        return finish_change(
            self, make_error(errc::missing_data,
                             "node " + req.id() +
                                 " is a member but came back without its data; remove it "
                                 "first (leave " +
                                 req.id() + "), then let it join again"));
      return finish_change(self, membership_response(s)); // a retry: already done
    }
    // An operator's add (incarnation 0) waits for the node to join and claim it.
    next.push_back(member{req.id(), req.address(), true,
                          req.incarnation() == 0 ? any_incarnation : req.incarnation()});
    c.index = s.last_index() + 1;
    append_config(self, std::move(next),
                  "adds " + req.id() + " at " + req.address() + " as a learner");
    return;
  }
  auto& id = c.leave.id();
  if (!s.config.is_member(id))
    return finish_change(self, membership_response(s)); // gone already
  if (s.config.is_voter(id) && s.config.voters() == 1)
    return finish_change(
        self, make_error(errc::invalid_request, "cannot remove " + id + ", the last voter"));
  next.erase(std::remove_if(next.begin(), next.end(), [&](const member& m) { return m.id == id; }),
             next.end());
  c.index = s.last_index() + 1;
  append_config(self, std::move(next), "removes " + id);
}

// A learner whose log has caught up becomes a voter, so that adding a node never stalls
// commits (it is not counted before it can keep up).
void maybe_promote(leader_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (!rules::config_change_allowed(s, st.noop_index) || (st.change && st.change->index > 0) ||
      st.transfer || st.leaving)
    return;
  auto& progress = st.repl->progress();
  for (auto& m : s.config.members) {
    if (!m.learner)
      continue;
    auto i = progress.find(m.id);
    if (i == progress.end())
      continue;
    auto match = i->second.match;
    if (match < s.config.index || match + st.ctx.cfg->learner_promote_lag < s.commit_index)
      continue;
    auto next = s.config.members;
    for (auto& n : next)
      if (n.id == m.id)
        n.learner = false;
    append_config(self, std::move(next),
                  "promotes " + m.id + " to voter (caught up at " + std::to_string(match) + ")");
    return;
  }
}

// The most up-to-date other voter: the one a removed or transferring leader hands over to.
std::string best_successor(leader_ptr self) {
  auto& s = *self->state.rs;
  std::string best;
  uint64_t best_match = 0;
  for (auto& [id, p] : self->state.repl->progress())
    if (s.config.is_voter(id) && (best.empty() || p.match > best_match)) {
      best = id;
      best_match = p.match;
    }
  return best;
}

void send_timeout_now(leader_ptr self, const std::string& target) {
  auto& s = *self->state.rs;
  pb::TimeoutNow tn;
  tn.set_term(s.term);
  tn.set_leader_id(s.id);
  send_to(self, target, tn);
}

void check_transfer(leader_ptr self) {
  auto& st = self->state;
  if (!st.transfer || st.transfer->timeout_now_sent)
    return;
  auto& progress = st.repl->progress();
  auto i = progress.find(st.transfer->target);
  if (i == progress.end())
    return;
  if (i->second.match == st.rs->last_index()) {
    st.ctx.log->info("{} [term {}] hands its leadership to {}", st.rs->id, st.rs->term,
                     st.transfer->target);
    st.transfer->timeout_now_sent = true;
    send_timeout_now(self, st.transfer->target);
  }
}

void on_config_committed(leader_ptr self) {
  auto& st = self->state;
  auto& s = *st.rs;
  if (st.change && st.change->index > 0 && s.commit_index >= st.change->index)
    finish_change(self, membership_response(s));
  if (!st.leaving && !CAFRAFT_CANARY("removed_leader_keeps_leading") && rules::check_removed(s)) {
    // Thesis §4.2.2: a leader that removed itself steps down once that is committed. First the
    // writes committed so far get their results (the state machine answers in order, so an
    // empty apply is answered after them), then the most up-to-date voter is told to take
    // over, so that the cluster is not left waiting for an election timeout.
    st.leaving = true;
    st.ctx.log->info("{} [term {}] removed itself from the cluster: steps down", s.id, s.term);
    self->request(st.ctx.state_machine, caf::infinite, apply_atom::value,
                  std::vector<pb::LogEntry>{})
        .then([self](const std::vector<std::string>&) {
          auto& ls = self->state;
          if (ls.retired)
            return;
          guard g{self, kind};
          fail_pending(self, make_error(errc::leadership_lost));
          if (auto next = best_successor(self); !next.empty())
            send_timeout_now(self, next);
          ls.rs->leader_id.clear();
          persist_appended(self);
          hand_over(self, role_kind::follower);
        });
    return;
  }
  try_change(self);
  maybe_promote(self);
}

caf::response_promise request_change(leader_ptr self, pending_change c) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (st.change) {
    rp.deliver(make_error(errc::config_change_in_progress));
    return rp;
  }
  c.rp = rp;
  st.change = std::move(c);
  try_change(self);
  return rp;
}

} // namespace cafraft::leader_detail
