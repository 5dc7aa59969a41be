// Leader: one actor per term of leadership.
//
//   owns      the Raft state while it leads, and every pending client request
//   receives  proposals (put, delete, propose), reads, AppendEntriesResponse and
//             InstallSnapshotResponse, its heartbeat timer, compaction after the state machine's
//             snapshots, and messages of other nodes that may depose it
//   sends     AppendEntries through the peer actors (batched, pipelined), the snapshot in chunks
//             to followers that need entries it has dropped, committed entries to the state
//             machine, answers to clients after apply
//   becomes   follower on any message of a higher term
//
//     candidate --won--> leader --higher term--> follower
//
// A thin shell: every decision (replication, commit, reads, membership, transfer, stepping
// down) is core::step_leader in runtime/core_leader.cpp, with its invariants. The shell turns
// messages into events, keeps the client's promises under request ids, runs the timers, and
// hands the effects to the executor (actors/executor.hpp).
#include <chrono>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cafraft/actors/executor.hpp>
#include <cafraft/actors/roles.hpp>
#include <cafraft/runtime/features.hpp>

namespace cafraft {

namespace {

struct leader_state : role_base {
  core::leader_role role;
  // The leadership hooks (node_config::on_become_leader, before_transfer): the hook that runs
  // (0: none), the clients' writes and reads that wait for on_become_leader (their promises
  // are held under their request ids), and a transfer that waits for before_transfer.
  uint64_t hook = 0;
  uint64_t hooks = 0;
  bool serving = true;
  std::vector<std::pair<uint64_t, std::function<void()>>> waiting;
  std::pair<uint64_t, std::function<void()>> transfer;
  static inline const char* name = "cafraft.leader";
};

using leader_ptr = inspected<leader_state>*;

/// Requests that waited for a hook get leadership_lost once the leader hands over.
void fail_waiting(leader_ptr self) {
  auto& st = self->state;
  if (st.transfer.second)
    st.waiting.push_back(std::move(st.transfer));
  st.transfer = {};
  for (auto& [id, run] : st.waiting)
    if (auto i = st.promises.find(id); i != st.promises.end()) {
      i->second.deliver(make_error(errc::leadership_lost, "the leader stepped down"));
      st.promises.erase(i);
      st.timed.erase(id);
    }
  st.waiting.clear();
}

/// The one way into the leader's rules (core::step_leader).
void step(leader_ptr self, core::event ev) {
  step_guard<inspected<leader_state>> g{self, role_kind::leader};
  auto& st = self->state;
  execute(self, core::step_leader(*st.rs, st.role, core_env(self), ev), &step, &ev);
  if (!st.rs) // handed over
    fail_waiting(self);
  wake_at(self, core::deadline(st.role));
}

/// Starts a leadership hook: `call` gets the `done` to call. Its end (done, or the timeout)
/// comes back as hook_done_atom.
void run_hook(leader_ptr self, const char* what,
              const std::function<void(std::function<void()>)>& call) {
  auto& st = self->state;
  auto id = st.hook = ++st.hooks;
  auto me = caf::actor_cast<caf::actor>(self);
  st.ctx.log->info("{} [term {}] runs {}", st.ctx.cfg->id, st.rs->term, what);
  self->delayed_send(self, st.ctx.cfg->leader_hook_timeout, hook_done_atom::value, id, true);
  try {
    call([me, id] { caf::anon_send(me, hook_done_atom::value, id, false); });
  } catch (const std::exception& ex) {
    st.ctx.log->warn("{} [term {}] {} threw: {}", st.ctx.cfg->id, st.rs->term, what, ex.what());
    caf::anon_send(me, hook_done_atom::value, id, false);
  }
}

/// A hook ended: the writes and reads that waited are served, a waiting transfer goes on.
void hook_done(leader_ptr self, uint64_t id, bool timed_out) {
  auto& st = self->state;
  if (id != st.hook || !st.rs)
    return;
  st.hook = 0;
  if (timed_out)
    st.ctx.log->warn("{} [term {}] a leadership hook did not finish within {} ms: goes on",
                     st.ctx.cfg->id, st.rs->term, st.ctx.cfg->leader_hook_timeout.count());
  st.serving = true;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& [rid, run] : waiting)
    run();
  if (auto transfer = std::move(st.transfer.second)) {
    st.transfer = {};
    transfer();
  }
}

/// A request the core answers later (reply or read_state): its promise waits under an id.
/// Writes and reads wait while on_become_leader runs.
template <class Event, class... Ts> caf::response_promise ask(leader_ptr self, Ts&&... xs) {
  auto rp = self->make_response_promise();
  auto& st = self->state;
  constexpr bool client =
      std::is_same_v<Event, core::write_request> || std::is_same_v<Event, core::read_request>;
  auto timed = [&](uint64_t id) {
    if constexpr (std::is_same_v<Event, core::write_request>)
      st.timed.emplace(id, self->clock().now());
    return id;
  };
  if (client && !st.serving) {
    if (st.waiting.size() >= st.ctx.cfg->max_pending_requests) {
      rp.deliver(make_error(errc::overloaded, "the new leader is not serving yet"));
      return rp;
    }
    auto id = timed(st.hold(rp));
    st.waiting.emplace_back(id, [self, id, args = std::make_tuple(std::forward<Ts>(xs)...)] {
      std::apply([&](auto&... a) { step(self, Event{id, std::move(a)...}); }, args);
    });
    return rp;
  }
  step(self, Event{timed(st.hold(rp)), std::forward<Ts>(xs)...});
  return rp;
}

/// A read: linearizable (ReadIndex), or stale from this node's state machine once it applied
/// `min_index`.
caf::response_promise read(leader_ptr self, read_mode mode, uint64_t min_index,
                           core::read_query q) {
  // A follower read on the leader is its own ReadIndex read; a lease read skips the round trip
  // while the lease holds (core::read_request::lease).
  if (mode == read_mode::linearizable || mode == read_mode::follower || mode == read_mode::lease)
    return ask<core::read_request>(self, std::move(q), mode == read_mode::lease);
  auto rp = self->make_response_promise();
  if (mode == read_mode::unsupported)
    rp.deliver(unsupported_read());
  else
    read_from_state_machine(self, rp, min_index, std::move(q));
  return rp;
}

caf::response_promise reject(leader_ptr self, std::string why) {
  auto rp = self->make_response_promise();
  rp.deliver(make_error(errc::invalid_request, std::move(why)));
  return rp;
}

/// The leader's clock for session entries, in ms since the Unix epoch.
uint64_t wall_ms(leader_ptr self) {
  auto& cfg = *self->state.ctx.cfg;
  if (cfg.wall_clock_ms)
    return cfg.wall_clock_ms();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

/// An entry of a client session (docs/sessions.md): `tag` null opens one.
caf::response_promise session_write(leader_ptr self, const pb::SessionTag* tag,
                                    std::string command) {
  auto& st = self->state;
  if (st.rs->cluster_level < features::sessions)
    return reject(self, "client sessions need the cluster's feature level " +
                            std::to_string(features::sessions) + "; it is at " +
                            std::to_string(std::max(st.rs->cluster_level, features::base)) +
                            " until every member runs a binary that supports it");
  pb::SessionEntry e;
  e.set_time_ms(wall_ms(self));
  if (tag) {
    if (tag->sequence() == 0)
      return reject(self, "a session's sequence numbers start at 1");
    *e.mutable_tag() = *tag;
    e.set_command(std::move(command));
  } else {
    e.set_timeout_ms(static_cast<uint64_t>(st.ctx.cfg->session_timeout.count()));
  }
  return ask<core::write_request>(self, pb::ENTRY_SESSION, e.SerializeAsString());
}

/// A write of the key-value store, in a session when it carries a tag.
template <class Request, class Field>
caf::response_promise propose_kv(leader_ptr self, Request& req, Field field) {
  if (req.key().empty())
    return reject(self, "empty key");
  pb::SessionTag tag;
  bool in_session = req.has_session();
  if (in_session)
    tag.Swap(req.mutable_session());
  req.clear_session();
  pb::KvCommand cmd;
  *(cmd.*field)() = std::move(req);
  if (in_session)
    return session_write(self, &tag, cmd.SerializeAsString());
  return ask<core::write_request>(self, pb::ENTRY_COMMAND, cmd.SerializeAsString());
}

pb::Inspection inspect_leader(leader_ptr self) {
  auto& st = self->state;
  auto fields = role_fields(*st.rs);
  auto now = self->clock().now();
  for (auto& [id, p] : st.role.repl->progress()) {
    auto heard = st.role.last_heard.find(id);
    fields.emplace_back("peer." + id + ".last_contact_ms",
                        heard == st.role.last_heard.end()
                            ? std::string{"never"}
                            : std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 now - heard->second)
                                                 .count()));
    fields.emplace_back("peer." + id + ".match", std::to_string(p.match));
    fields.emplace_back("peer." + id + ".next", std::to_string(p.next));
    fields.emplace_back("peer." + id + ".inflight", std::to_string(p.inflight));
    fields.emplace_back("peer." + id + ".state", p.departing      ? "departing"
                                                 : p.snapshotting ? "snapshot"
                                                 : p.probing      ? "probe"
                                                                  : "replicate");
  }
  fields.emplace_back("pending_writes", std::to_string(st.role.pending_writes.size()));
  fields.emplace_back("pending_reads", std::to_string(st.role.pending_reads.size()));
  fields.emplace_back("writes_answered", std::to_string(st.writes_answered));
  fields.emplace_back("write_answer_us_sum", std::to_string(st.write_answer_us_sum));
  return make_inspection(self, "leader", std::move(fields));
}

caf::behavior leader_impl(leader_ptr self, node_context ctx, std::shared_ptr<raft_state> rs,
                          uint64_t seed) {
  init_role(self, std::move(ctx), std::move(rs), seed);
  step(self, core::started{});
  auto& config = *self->state.ctx.cfg;
  if (config.on_become_leader && self->state.rs) {
    self->state.serving = false;
    auto term = self->state.rs->term;
    run_hook(self, "on_become_leader", [&config, term](std::function<void()> done) {
      config.on_become_leader(term, std::move(done));
    });
  }
  return caf::message_handler{
      [self](flush_atom) { step(self, core::flush_now{}); },
      [self](tick_atom) {
        woken(self);
        step(self, core::tick{});
      },
      [self](compact_atom, const pb::SnapshotMeta& meta) { step(self, core::compacted{meta}); },
      [self](pb::PutRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_put); },
      [self](pb::DeleteRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_del); },
      [self](pb::CasRequest& req) { return propose_kv(self, req, &pb::KvCommand::mutable_cas); },
      [self](pb::ProposeRequest& req) {
        if (req.has_session())
          return session_write(self, &req.session(), std::move(*req.mutable_data()));
        return ask<core::write_request>(self, pb::ENTRY_COMMAND, std::move(*req.mutable_data()));
      },
      [self](const pb::OpenSessionRequest&) { return session_write(self, nullptr, {}); },
      [self](const pb::GetRequest& req) {
        return read(self, read_mode_of(req), req.min_index(), kv_read(req));
      },
      [self](pb::QueryRequest& req) {
        auto mode = read_mode_of(req);
        auto min_index = req.min_index();
        return read(self, mode, min_index, user_read(req));
      },
      [self](status_atom) {
        return make_status(*self->state.rs, role_kind::leader, self->state.ctx.cfg->group);
      },
      [self](config_change_atom, pb::JoinRequest& req) {
        return ask<core::change_request>(self, std::optional<pb::JoinRequest>{std::move(req)},
                                         pb::LeaveRequest{});
      },
      [self](config_change_atom, pb::LeaveRequest& req) {
        return ask<core::change_request>(self, std::optional<pb::JoinRequest>{}, std::move(req));
      },
      [self](const pb::TransferLeadershipRequest& req) -> caf::response_promise {
        auto& st = self->state;
        auto& cfg = *st.ctx.cfg;
        if (!cfg.before_transfer)
          return ask<core::transfer_request>(self, req.target());
        auto rp = self->make_response_promise();
        if (st.transfer.second || st.hook != 0) {
          rp.deliver(make_error(errc::unknown_leader, "a transfer or a leadership hook waits"));
          return rp;
        }
        auto id = st.hold(rp);
        auto target = req.target();
        st.transfer = {id, [self, id, target] { step(self, core::transfer_request{id, target}); }};
        auto term = st.rs->term;
        run_hook(self, "before_transfer", [&cfg, term, target](std::function<void()> done) {
          cfg.before_transfer(term, target, std::move(done));
        });
        return rp;
      },
      [self](hook_done_atom, uint64_t id, bool timed_out) { hook_done(self, id, timed_out); },
      [self](step_down_atom) { return ask<core::step_down_request>(self); },
      [self](inspect_atom) { return inspect_leader(self); },
  }
      .or_else(raft_message_handlers(self, &step))
      .or_else(peer_handlers(self));
}

} // namespace

caf::actor spawn_leader(caf::local_actor* node, node_context ctx, std::shared_ptr<raft_state> rs,
                        uint64_t seed) {
  return node->spawn<caf::linked>(leader_impl, std::move(ctx), std::move(rs), seed);
}

} // namespace cafraft
