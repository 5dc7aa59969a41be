// The executor: the one place where a role actor carries out what the core decided
// (runtime/core.hpp). It sends, persists, applies and answers in the order of the effects:
// a send that waits for writes leaves only once every write asked for before it is durable.
// Included by the role files only.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include <cafraft/actors/role_common.hpp>
#include <cafraft/runtime/core.hpp>

namespace cafraft {

/// The node's own clock: the actor clock's (virtual under CAF's test scheduler), run at
/// node_config::clock_rate (the simulation's clock skew; 1 everywhere else).
template <class Self> core::time_point local_now(Self* self) {
  static_assert(std::is_same_v<caf::actor_clock::time_point, core::time_point>);
  auto now = self->clock().now();
  auto rate = self->state.ctx.cfg->clock_rate;
  if (rate == 1.0)
    return now;
  return core::time_point{std::chrono::duration_cast<core::time_point::duration>(
      std::chrono::duration<double, core::time_point::period>(now.time_since_epoch()) * rate)};
}

/// The core's view of the time: the node's own clock.
template <class Self> core::env core_env(Self* self) {
  auto& st = self->state;
  return core::env{*st.ctx.cfg, *st.ctx.log, local_now(self), st.rng};
}

template <class Self>
void send_raft_message(Self* self, const std::string& to, core::raft_message msg) {
  std::visit([&](auto& m) { send_to(self, to, std::move(m)); }, msg);
}

/// A role's entry point: it steps the core with an event and executes the effects.
template <class Self> struct role_step { using type = void (*)(Self*, core::event); };

/// The Raft messages of another node, each stepped into the role's core as a
/// core::raft_message (moved out of the mailbox: a hand-over sends it on from the event).
template <class Self>
caf::message_handler raft_message_handlers(Self* self, typename role_step<Self>::type step) {
  auto raft = [self, step](auto& m) { step(self, core::raft_message{std::move(m)}); };
  return caf::message_handler{
      [raft](pb::AppendEntries& m) { raft(m); },
      [raft](pb::AppendEntriesResponse& m) { raft(m); },
      [raft](pb::RequestVote& m) { raft(m); },
      [raft](pb::RequestVoteResponse& m) { raft(m); },
      [raft](pb::InstallSnapshot& m) { raft(m); },
      [raft](pb::InstallSnapshotResponse& m) { raft(m); },
      [raft](pb::TimeoutNow& m) { raft(m); },
      [raft](pb::ReadIndexRequest& m) { raft(m); },
      [raft](pb::ReadIndexResponse& m) { raft(m); },
      // The node's peer actor lost its connection to member `id` (quiescence: core::peer_lost).
      [self, step](connection_lost_atom, const std::string& id) {
        step(self, core::peer_lost{id});
      },
  };
}

/// Where a Raft message goes (outgoing()), for storage to send after a write.
template <class Self>
std::pair<caf::actor, caf::message> outgoing_raft_message(Self* self, const std::string& to,
                                                          core::raft_message msg) {
  return std::visit([&](auto& m) { return outgoing(self, to, std::move(m)); }, msg);
}

/// Carries out `fx` in order. `step` is the role's entry point, called with the events that
/// effects produce later (persisted, chunk_stored) while the role has not handed over.
/// `cause`: the event the effects answer; a hand-over that redispatches sends it on.
template <class Self>
void execute(Self* self, core::effects fx, typename role_step<Self>::type step,
             const core::event* cause = nullptr) {
  auto& st = self->state;
  bool flush_here = false;
  // Sends and stops that a write carries (marked only when the effects hold a write).
  std::vector<bool> waiting;
  if (std::any_of(fx.begin(), fx.end(),
                  [](const core::effect& f) { return std::holds_alternative<core::persist>(f); }))
    waiting.assign(fx.size(), false);
  auto waits = [&](const core::effect& f) {
    auto* s = std::get_if<core::send>(&f);
    return (s && s->after_writes) || std::holds_alternative<core::stop_removed>(f);
  };
  for (size_t i = 0; i < fx.size(); ++i) {
    if (!waiting.empty() && waiting[i])
      continue;
    std::visit(
        core::overloaded{
            [&](core::persist& p) {
              // What waits for this write: the sends and stops after it, up to the next write.
              // Storage sends the messages itself; the role hears back only when it must (the
              // core wants persisted{}, a stop, or client promises that a storage failure
              // fails at once).
              after_write after;
              bool stops = false;
              for (size_t j = i + 1; j < fx.size() && !std::holds_alternative<core::persist>(fx[j]);
                   ++j)
                if (waits(fx[j])) {
                  waiting[j] = true;
                  if (auto* s = std::get_if<core::send>(&fx[j])) {
                    if (auto out = outgoing_raft_message(self, s->to, std::move(s->msg)); out.first)
                      after.sends.push_back(std::move(out));
                  } else {
                    stops = true;
                  }
                }
              auto notify = step != nullptr ? p.notify : 0;
              if (notify == 0 && !stops && st.promises.empty()) {
                persist_then(self, std::move(p.batch), std::move(after));
                return;
              }
              persist_then(self, std::move(p.batch), std::move(after), [self, notify, stops, step] {
                if (stops)
                  self->send(self->state.ctx.node, removed_atom::value);
                if (notify != 0 && !self->state.retired)
                  step(self, core::persisted{notify});
              });
            },
            [&](core::send& s) {
              if (!s.after_writes) {
                send_raft_message(self, s.to, std::move(s.msg));
                return;
              }
              // No write of this step: it waits for those of earlier steps, if any.
              after_write after;
              if (auto out = outgoing_raft_message(self, s.to, std::move(s.msg)); out.first)
                after.sends.push_back(std::move(out));
              persist_then(self, persist_batch{}, std::move(after));
            },
            [&](core::stop_removed&) {
              persist_then(self, persist_batch{}, after_write{},
                           [self] { self->send(self->state.ctx.node, removed_atom::value); });
            },
            [&](core::apply& a) {
              if (!a.report || step == nullptr) {
                // Nobody waits for the results: sent anonymously, since CAF 0.17 sends a
                // handler's result back to the sender of a plain message too.
                caf::anon_send(st.ctx.state_machine, apply_atom::value, std::move(a.entries));
                return;
              }
              auto first = a.entries.empty() ? 0 : a.entries.front().index();
              self->request(st.ctx.state_machine, caf::infinite, apply_atom::value,
                            std::move(a.entries))
                  .then(
                      [self, step, first, barrier = a.barrier](std::vector<std::string>& results) {
                        if (!self->state.retired)
                          step(self, core::applied{first, std::move(results), barrier});
                      });
            },
            [&](core::reply& r) {
              auto held = st.promises.find(r.id);
              if (held == st.promises.end())
                return;
              auto& rp = held->second;
              std::visit(core::overloaded{
                             [&](core::failure& f) {
                               rp.deliver(f.detail.empty()
                                              ? make_error(f.code)
                                              : make_error(f.code, std::move(f.detail)));
                             },
                             [&](auto& v) { rp.deliver(std::move(v)); },
                         },
                         r.value);
              st.promises.erase(held);
              st.answered(r.id, self->clock().now(),
                          !std::holds_alternative<core::failure>(r.value));
            },
            [&](core::read_state& r) {
              auto held = st.promises.find(r.id);
              if (held == st.promises.end())
                return;
              read_from_state_machine(self, std::move(held->second), r.min_index,
                                      std::move(r.query));
              st.promises.erase(held);
            },
            [&](core::read_chunk& c) {
              self->request(st.ctx.storage, caf::infinite, snapshot_read_atom::value, c.offset,
                            c.max)
                  .then(
                      [self, step, peer = c.peer, offset = c.offset](pb::SnapshotMeta& meta,
                                                                     std::string& data) {
                        if (step != nullptr && !self->state.retired)
                          step(self,
                               core::chunk_read{peer, offset, std::move(meta), std::move(data)});
                      },
                      [self](caf::error& e) {
                        self->state.ctx.log->error("{} cannot read its snapshot: {}",
                                                   self->state.ctx.cfg->id, render(e));
                      });
            },
            [&](core::flush_soon&) {
              // Nothing else waits in the mailbox: nothing would share the flush, so it runs
              // right after these effects. Otherwise it queues behind what waits (flush_atom),
              // and writes of many clients share one write and one AppendEntries.
              if (self->mailbox().empty() && step != nullptr)
                flush_here = true;
              else
                self->send(self, flush_atom::value);
            },
            [&](core::leader_known& l) {
              self->send(st.ctx.node, leadership_atom::value, l.term, l.id, l.address);
            },
            [&](core::store_chunk& c) {
              self->request(st.ctx.storage, caf::infinite, snapshot_chunk_atom::value, c.req)
                  .then(
                      // The request holds its own copy: the chunk's data moves, not copied again.
                      [self, step, req = std::move(c.req),
                       resp = std::move(c.resp)](uint64_t next, bool complete) {
                        if (step != nullptr && !self->state.retired) // else sent again
                          step(self, core::chunk_stored{req, resp, next, complete});
                      },
                      [self](caf::error& e) { storage_failed(self, e); });
            },
            [&](core::restore& r) {
              self->send(st.ctx.state_machine, restore_atom::value, r.meta);
            },
            [&](core::become& b) {
              hand_over(self, b.next);
              // The handler may have moved the message out of the mailbox: it goes on from the
              // event, to be handled by the next role.
              auto* m = cause ? std::get_if<core::raft_message>(cause) : nullptr;
              if (m && b.redispatch)
                std::visit([&](auto& x) { self->send(st.ctx.node, x); }, *m);
            },
        },
        fx[i]);
  }
  if (flush_here && !st.retired)
    step(self, core::flush_now{});
}

/// Makes sure the role is woken (tick_atom) at `when` or earlier: one delayed message, and
/// another only for an earlier deadline. An early or stale tick finds nothing due in the core.
template <class Self> void wake_at(Self* self, core::time_point when) {
  auto& st = self->state;
  if (st.retired || when == core::time_point::max() || (st.wake_pending && st.wake_at <= when))
    return;
  auto now = local_now(self);
  st.wake_pending = true;
  st.wake_at = when;
  auto local = when > now ? when - now : caf::timespan{0};
  auto rate = st.ctx.cfg->clock_rate;
  // Rounded up, and a microsecond more: a tick that came early would find nothing due.
  auto wait = rate == 1.0
                  ? local
                  : std::chrono::ceil<caf::timespan>(
                        std::chrono::duration<double, caf::timespan::period>(local) / rate) +
                        std::chrono::microseconds{1};
  self->delayed_send(self, wait, tick_atom::value);
}

/// A wake-up came: the one asked for last, or an older one for a later deadline.
template <class Self> void woken(Self* self) {
  auto& st = self->state;
  if (st.wake_pending && local_now(self) >= st.wake_at)
    st.wake_pending = false;
}

} // namespace cafraft
