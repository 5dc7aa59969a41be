// What a node knows of its leader, and the leadership and membership events its subscribers
// get: at most one event in flight to each, the rest queued (docs/membership.md).
#include <caf/all.hpp>

#include <cafraft/actors/node_state.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft::node_detail {

void push_events(node_ptr self, subscriber& sub) {
  if (sub.in_flight || sub.queue.empty())
    return;
  auto ev = std::move(sub.queue.front());
  sub.queue.pop_front();
  ev.set_dropped(sub.dropped);
  sub.dropped = 0;
  sub.in_flight = true;
  auto who = sub.who;
  auto release = [self, who] {
    for (auto& s : self->state.subscribers)
      if (s.who == who) {
        s.in_flight = false;
        push_events(self, s);
      }
  };
  self->request(who, caf::infinite, std::move(ev))
      .then([release] { release(); }, [release](caf::error&) { release(); });
}

void publish(node_ptr self, const pb::LeadershipEvent& ev) {
  auto& st = self->state;
  for (auto& sub : st.subscribers) {
    if (ev.kind() == pb::LeadershipEvent::MEMBERSHIP_CHANGED && !sub.membership)
      continue;
    if (sub.queue.size() >= st.ctx.cfg->max_pending_events) {
      sub.queue.pop_front();
      ++sub.dropped;
    }
    sub.queue.push_back(ev);
    push_events(self, sub);
  }
}

void emit(node_ptr self, pb::LeadershipEvent::Kind kind, uint64_t term, const std::string& leader) {
  pb::LeadershipEvent ev;
  ev.set_kind(kind);
  ev.set_term(term);
  ev.set_leader_id(leader);
  ev.set_node_id(self->state.ctx.cfg->id);
  publish(self, ev);
}

pb::LeadershipEvent membership_event(const node_state& st) {
  pb::LeadershipEvent ev;
  ev.set_kind(pb::LeadershipEvent::MEMBERSHIP_CHANGED);
  ev.set_term(st.leader_term);
  ev.set_leader_id(st.leader_id);
  ev.set_node_id(st.ctx.cfg->id);
  ev.set_config_index(st.config_index);
  *ev.mutable_members() = st.config.members();
  return ev;
}

// A new subscriber starts from what the node knows now: the leader, when one is known, and the
// configuration, when it asked for membership events.
void subscribe(node_ptr self, const caf::actor& who, bool membership) {
  auto& ns = self->state;
  if (!who)
    return;
  self->monitor(who);
  ns.subscribers.push_back(subscriber{who, membership, {}, false, 0});
  auto& sub = ns.subscribers.back();
  if (!ns.leader_id.empty()) {
    pb::LeadershipEvent ev;
    ev.set_kind(ns.leader_id == ns.ctx.cfg->id ? pb::LeadershipEvent::BECAME_LEADER
                                               : pb::LeadershipEvent::LEADER_CHANGED);
    ev.set_term(ns.leader_term);
    ev.set_leader_id(ns.leader_id);
    ev.set_node_id(ns.ctx.cfg->id);
    sub.queue.push_back(std::move(ev));
  }
  if (membership && ns.config_index != ~uint64_t{0})
    sub.queue.push_back(membership_event(ns));
  push_events(self, sub);
}

pb::LeaderInfo leader_info(const node_state& st) {
  pb::LeaderInfo info;
  info.set_id(st.leader_id);
  info.set_address(st.leader_address);
  info.set_term(st.leader_term);
  return info;
}

// The leader failed node_config::valid_leader: asked to step down, once per term.
void check_leader(node_ptr self, uint64_t term, const std::string& leader) {
  auto& st = self->state;
  auto& cfg = *st.ctx.cfg;
  if (!cfg.valid_leader || term <= st.invalid_term || cfg.valid_leader(leader, term))
    return;
  st.invalid_term = term;
  st.ctx.log->warn("{} [term {}] leader {} is not valid (node_config::valid_leader): asks it to "
                   "step down",
                   cfg.id, term, leader);
  emit(self, pb::LeadershipEvent::LEADER_INVALID, term, leader);
  caf::actor to;
  if (leader == cfg.id) {
    to = st.ctx.node;
  } else if (auto i = st.ctx.peers.find(leader); i != st.ctx.peers.end()) {
    to = i->second; // the peer passes the request on to the leader's node
  }
  if (!to)
    return;
  auto log = st.ctx.log;
  auto me = cfg.id;
  self->request(to, cfg.election_timeout_max, step_down_atom::value)
      .then(
          [log, me, leader](uint64_t left) {
            log->info("{} leader {} stepped down from term {}", me, leader, left);
          },
          [log, me, leader](caf::error& e) {
            log->info("{} leader {} did not step down: {}", me, leader, render(e));
          });
}

// A role tells what it knows of the leader: caches it, wakes waiters, tells subscribers.
void note_leader(node_ptr self, uint64_t term, const std::string& leader,
                 const std::string& address) {
  auto& st = self->state;
  auto& me = st.ctx.cfg->id;
  if (term < st.leader_term)
    return;
  bool was_leading = st.reported_leader == me;
  st.leader_term = term;
  st.leader_id = leader;
  st.leader_address = address;
  if (was_leading && leader != me)
    emit(self, pb::LeadershipEvent::LOST_LEADERSHIP, term, leader);
  if (leader.empty())
    return; // nobody leads as far as we know: waiters and subscribers wait for one
  if (leader != st.reported_leader || term != st.reported_term) {
    emit(self,
         leader == me ? pb::LeadershipEvent::BECAME_LEADER : pb::LeadershipEvent::LEADER_CHANGED,
         term, leader);
    check_leader(self, term, leader);
  }
  if (was_leading && leader != me)
    st.reported_leader.clear();
  st.reported_term = term;
  st.reported_leader = leader;
  auto info = leader_info(st);
  while (!st.leader_waiters.empty() && st.leader_waiters.begin()->first < term) {
    st.leader_waiters.begin()->second.deliver(info);
    st.leader_waiters.erase(st.leader_waiters.begin());
  }
}

void leader_lost(node_ptr self, uint64_t term) {
  auto& st = self->state;
  if (st.reported_leader == st.ctx.cfg->id) {
    emit(self, pb::LeadershipEvent::LOST_LEADERSHIP, term, "");
    st.reported_leader.clear();
  }
  if (term >= st.leader_term) {
    st.leader_term = term;
    st.leader_id.clear();
    st.leader_address.clear();
  }
}

} // namespace cafraft::node_detail
