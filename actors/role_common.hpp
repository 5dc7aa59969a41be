// What the follower, candidate and leader shells share: their base state (with the client
// promises the core's requests stand for), the hand-over protocol, persist-then-send (the
// executor's, actors/executor.hpp), answering clients they cannot serve, and status. Included
// by the role files and the executor only.
//
// Hand-over: a role that is done moves its raft_state into a role_handover to the node and
// becomes "retired": it delegates whatever still reaches it back to the node (which routes it
// to the next role) until the node sends retire_atom, then it quits. So no message that was
// routed to the old role is lost, and the old role never touches the state again.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/logger.h>

#include <cafraft/actors/context.hpp>
#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/local.hpp>
#include <cafraft/runtime/core.hpp>
#include <cafraft/runtime/observer.hpp>
#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft {

struct role_base {
  std::shared_ptr<raft_state> rs; // null once handed over
  node_context ctx;
  std::mt19937_64 rng; // election timeouts (core::env::rng)
  // The wake-up under way (tick_atom): when it comes. The core knows its deadlines
  // (core::deadline); the shell keeps one delayed message at or before the earliest.
  caf::actor_clock::time_point wake_at;
  bool wake_pending = false;
  bool retired = false;
  // The configuration last told to the node (which keeps a peer for every member).
  uint64_t announced_config = ~uint64_t{0};
  /// The promises of the client requests the core holds (core::request_id -> promise). When
  /// storage fails each gets the error at once (CAF 0.17 drops an unanswered promise silently,
  /// and the client would wait for its timeout).
  std::map<uint64_t, caf::response_promise> promises;
  uint64_t next_request = 0;
  /// Writes being timed (request id -> when the role took it), and the times of those answered:
  /// the leader's write latency, commit and apply included (the dashboard's chart).
  std::map<uint64_t, caf::actor_clock::time_point> timed;
  uint64_t writes_answered = 0;
  uint64_t write_answer_us_sum = 0;

  /// Keeps `rp` until the core answers request `id` (a reply or read_state effect).
  uint64_t hold(caf::response_promise rp) {
    promises.emplace(++next_request, std::move(rp));
    return next_request;
  }

  /// Request `id` was answered at `now`: if it was a timed write that succeeded, its time counts.
  void answered(uint64_t id, caf::actor_clock::time_point now, bool ok) {
    auto i = timed.find(id);
    if (i == timed.end())
      return;
    if (!ok) {
      timed.erase(i);
      return;
    }
    ++writes_answered;
    write_answer_us_sum += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - i->second).count());
    timed.erase(i);
  }
};

/// Calls the step observer (tests) when the handler that created it returns.
template <class Self> struct step_guard {
  Self* self;
  role_kind kind;
  ~step_guard() {
    auto& st = self->state;
    if (st.retired)
      return;
    if (st.rs->config.index != st.announced_config) {
      // Every member gets a peer (and, across processes, a connection) as soon as it is in the
      // configuration, not only once this role first sends to it.
      st.announced_config = st.rs->config.index;
      self->send(st.ctx.node, config_change_atom::value, st.rs->config.index,
                 st.rs->config.to_proto());
    }
    if (st.ctx.cfg->observer)
      st.ctx.cfg->observer->on_step(kind, *st.rs);
  }
};

template <class Self>
void init_role(Self* self, node_context ctx, std::shared_ptr<raft_state> rs, uint64_t seed) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.rs = std::move(rs);
  st.rng.seed(seed);
  install_guards(self);
  // The node stops (the role is linked to it): the clients whose requests the role holds hear
  // it now, not at their timeouts (CAF 0.17 drops an unanswered promise). A write may still be
  // committed by the others: leadership_lost, indefinite, as at a step-down.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& held = self->state.promises;
    for (auto& [id, rp] : held)
      rp.deliver(make_error(errc::leadership_lost, "the node stops"));
    held.clear();
    self->state.timed.clear();
    self->quit(msg.reason);
  });
}

/// Where a Raft message to member `to` goes: its peer actor, or, for a member the role has no
/// peer actor for (it joined since), the node, which makes one. Nothing for this node itself.
template <class Self, class Msg>
std::pair<caf::actor, caf::message> outgoing(Self* self, const std::string& to, Msg msg) {
  auto& st = self->state;
  auto i = st.ctx.peers.find(to);
  if (i != st.ctx.peers.end())
    return {i->second, caf::make_message(std::move(msg))};
  if (to == st.ctx.cfg->id)
    return {};
  return {st.ctx.node, caf::make_message(send_to_peer_atom::value, to,
                                         st.rs ? st.rs->address_of(to) : std::string{},
                                         caf::make_message(std::move(msg)))};
}

/// Sends a Raft message to member `to` (outgoing()).
template <class Self, class Msg> void send_to(Self* self, const std::string& to, Msg msg) {
  auto [dest, m] = outgoing(self, to, std::move(msg));
  if (dest)
    self->send(dest, std::move(m));
}

/// Gives the Raft state to the node for role `next` and retires. `redispatch`: the message
/// being handled goes back to the node too, for the next role to handle.
template <class Self> void hand_over(Self* self, role_kind next, bool redispatch = false) {
  auto& st = self->state;
  st.retired = true;
  // From now on the node queues what it would pass to this role, until the next one starts.
  if (st.ctx.route)
    st.ctx.route->clear_if(self->ctrl());
  self->send(st.ctx.node, handover_atom::value, role_handover{next, std::move(st.rs)});
  if (redispatch)
    self->send(st.ctx.node, self->current_mailbox_element()->copy_content_to_message());
  auto node = st.ctx.node;
  self->set_default_handler(
      [node, route = st.ctx.route](caf::scheduled_actor* s,
                                   caf::message_view& x) -> caf::result<caf::message> {
        // A node that learned of this role while it handed over (it finished joining) may pass
        // messages here again: cleared once more, so that they do not bounce between the two.
        if (route)
          route->clear_if(s->ctrl());
        return s->delegate(node, x.move_content_to_message());
      });
  self->become([self](retire_atom) { self->quit(); });
}

/// Storage failed: the node stops, and whatever the role holds pending gets the error.
template <class Self> void storage_failed(Self* self, const caf::error& e) {
  auto& st = self->state;
  st.ctx.log->error("{} storage failed: {}", st.ctx.cfg->id, render(e));
  for (auto& [id, rp] : st.promises)
    rp.deliver(e);
  st.promises.clear();
  st.timed.clear();
  self->send_exit(st.ctx.node, e);
  // And the role stops itself: CAF unlinks the sender of an exit message, so the node's own
  // exit would no longer reach this role, which would outlive the node and keep the process
  // from ending (~actor_system waits for every actor).
  self->quit(e);
}

/// Writes `batch`; once it is durable, storage sends `after` and then, when `f` is given, the
/// role hears of it and calls `f`. Batches are written, and what waits for them sent, in the
/// order they were asked for (thesis §3.8: persist before you promise). A storage failure
/// stops the node; a role that gave `f` hears of it first (storage_failed).
template <class Self, class F = std::nullptr_t>
void persist_then(Self* self, persist_batch batch, after_write after, F f = nullptr) {
  constexpr bool hear = !std::is_same_v<F, std::nullptr_t>;
  // An empty batch goes out at once when nothing waits at storage; otherwise it goes through
  // storage too, so that what it sends never overtakes what waits for an earlier write.
  auto& counts = *self->state.ctx.persisted;
  if (batch.empty() && counts.requested.load(std::memory_order_relaxed) ==
                           counts.completed.load(std::memory_order_acquire)) {
    for (auto& [to, msg] : after.sends)
      self->send(to, std::move(msg));
    if constexpr (hear)
      f();
    return;
  }
  counts.requested.fetch_add(1, std::memory_order_relaxed);
  auto& storage = self->state.ctx.storage;
  if constexpr (hear)
    self->request(storage, caf::infinite, persist_atom::value, std::move(batch), std::move(after))
        .then([f]() mutable { f(); }, [self](caf::error& e) { storage_failed(self, e); });
  else
    self->send(storage, persist_atom::value, std::move(batch), std::move(after));
}

/// A Get as the state machine takes it: a pb::KvQuery (a range read with range_end).
inline core::read_query kv_read(const pb::GetRequest& req) {
  pb::KvQuery q;
  q.set_key(req.key());
  q.set_range_end(req.range_end());
  q.set_limit(req.limit());
  return {q.SerializeAsString(), true};
}

/// How a node serves a read (docs/reads.md): through the leader's ReadIndex, from the leader's
/// state while its lease holds, from its own state after asking the leader for the read index
/// (follower), at once from its own state (stale, after min_index), or not at all.
enum class read_mode { linearizable, lease, follower, stale, unsupported };

template <class Request> read_mode read_mode_of(const Request& req) {
  switch (req.policy()) {
  case pb::READ_DEFAULT:
    return req.stale() ? read_mode::stale : read_mode::linearizable;
  case pb::READ_LINEARIZABLE:
    return read_mode::linearizable;
  case pb::READ_STALE:
    return read_mode::stale;
  case pb::READ_FOLLOWER:
    return read_mode::follower;
  case pb::READ_LEASE:
    return read_mode::lease;
  default:
    return read_mode::unsupported;
  }
}

inline caf::error unsupported_read() {
  return make_error(errc::invalid_request, "an unknown read policy");
}

/// A user's own query, as it is.
inline core::read_query user_read(pb::QueryRequest& req) {
  return {std::move(*req.mutable_query()), false};
}

/// Has the state machine answer `rp` with `q` once it has applied `min_index` (a
/// pb::GetResponse for a KV read, a pb::QueryResponse for a user's query). Delegated: the
/// state machine answers the client itself, so a role that hands over meanwhile loses nothing.
template <class Self>
void read_from_state_machine(Self* self, caf::response_promise rp, uint64_t min_index,
                             core::read_query q) {
  rp.delegate(self->state.ctx.state_machine, query_atom::value, min_index, std::move(q.bytes),
              q.kv);
}

/// The status of this node as a role sees it.
pb::NodeStatus make_status(const raft_state& s, role_kind role, uint64_t group);

/// What every role shows when inspected: term, vote, indexes, leader, configuration.
std::vector<std::pair<std::string, std::string>> role_fields(const raft_state& s);

/// The error for a client request that this role cannot serve: not_leader with the leader's
/// id and address, or unknown_leader.
caf::error redirect_error(const raft_state& s);

/// A read on a node that does not lead: stale ones from its own state machine, follower reads
/// through the role's rules (core::read_request: the leader's read index, then its own state),
/// linearizable and lease reads redirected to the leader.
template <class Self, class Step>
caf::response_promise non_leader_read(Self* self, Step step, read_mode mode, uint64_t min_index,
                                      core::read_query q) {
  auto rp = self->make_response_promise();
  if (mode == read_mode::stale)
    read_from_state_machine(self, rp, min_index, std::move(q));
  else if (mode == read_mode::follower)
    step(self, core::read_request{self->state.hold(rp), std::move(q), false});
  else if (mode == read_mode::unsupported)
    rp.deliver(unsupported_read());
  else
    rp.deliver(redirect_error(*self->state.rs));
  return rp;
}

/// Handlers that every non-leader role has: clients are redirected, stale reads are served
/// from the local state machine, status is answered.
template <class Self, class Step>
auto non_leader_client_handlers(Self* self, Step step, role_kind kind) {
  // A client sent away may find the leader gone: a quiesced follower wakes (core::wake).
  auto away = [self, step] {
    step(self, core::wake{});
    return redirect_error(*self->state.rs);
  };
  return caf::message_handler{
      [away](const pb::PutRequest&) -> caf::result<pb::WriteResponse> { return away(); },
      [away](const pb::DeleteRequest&) -> caf::result<pb::WriteResponse> { return away(); },
      [away](const pb::ProposeRequest&) -> caf::result<pb::WriteResponse> { return away(); },
      [away](const pb::CasRequest&) -> caf::result<pb::WriteResponse> { return away(); },
      [away](const pb::OpenSessionRequest&) -> caf::result<pb::WriteResponse> { return away(); },
      [self, step](const pb::GetRequest& req) -> caf::response_promise {
        return non_leader_read(self, step, read_mode_of(req), req.min_index(), kv_read(req));
      },
      [self, step](pb::QueryRequest& req) -> caf::response_promise {
        auto mode = read_mode_of(req);
        auto min_index = req.min_index();
        return non_leader_read(self, step, mode, min_index, user_read(req));
      },
      [self, kind](status_atom) {
        return make_status(*self->state.rs, kind, self->state.ctx.cfg->group);
      },
      [self, kind](inspect_atom) {
        return make_inspection(self, to_string(kind), role_fields(*self->state.rs));
      },
      [away](config_change_atom, const pb::JoinRequest&) -> caf::result<pb::MembershipResponse> {
        return away();
      },
      [away](config_change_atom, const pb::LeaveRequest&) -> caf::result<pb::MembershipResponse> {
        return away();
      },
      [away](const pb::TransferLeadershipRequest&) -> caf::result<pb::LeaderInfo> {
        return away();
      },
      [self](step_down_atom) -> caf::result<uint64_t> { return redirect_error(*self->state.rs); },
  };
}

/// Handlers every role has: a peer actor the node made for a member that joined.
template <class Self> auto peer_handlers(Self* self) {
  return caf::message_handler{
      [self](new_peer_atom, const std::string& id, const caf::actor& peer) {
        self->state.ctx.peers[id] = peer;
      },
  };
}

} // namespace cafraft
