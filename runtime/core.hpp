// The Raft core: every decision a role makes, as a pure function of the node's state and one
// event, returning the effects to carry out, in order (rabbitmq's Ra is the model: a pure
// server module and a thin process around it). No CAF, no I/O, no clock of its own: time comes
// in with the event. The role actors in actors/ turn CAF messages into events, call the step
// of their role and hand the effects to one executor (actors/executor.hpp).
//
// What is here so far: the term prelude that every Raft message passes once before any role's
// rules, and the follower and the candidate whole. The leader still decides in its actor
// (docs/architecture.md, "The core").
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <spdlog/logger.h>

#include "messages/raft.pb.h"
#include "runtime/config.hpp"
#include "runtime/raft_state.hpp"
#include "runtime/storage.hpp"

namespace cafraft::core {

/// Visits a variant with one lambda per alternative.
template <class... Fs> struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs> overloaded(Fs...) -> overloaded<Fs...>;

/// The Raft messages a node sends to another.
using raft_message =
    std::variant<pb::AppendEntries, pb::AppendEntriesResponse, pb::RequestVote,
                 pb::RequestVoteResponse, pb::InstallSnapshot, pb::InstallSnapshotResponse,
                 pb::TimeoutNow>;

/// Points in time as the core sees them (the actor clock's, in virtual time under test).
using time_point = std::chrono::steady_clock::time_point;

// -- events -----------------------------------------------------------------------------------

/// The role starts with the state its predecessor handed over.
struct started {};
/// The election timer ran out (its deadline passed with no word from a leader).
struct election_timeout {};
/// Every write asked for with persist::notify is durable.
struct persisted {
  uint64_t seq;
};
/// Storage took a snapshot chunk (store_chunk): `next` is where the next chunk must start;
/// `complete` when the whole snapshot is here and durable.
struct chunk_stored {
  pb::InstallSnapshot req;
  pb::InstallSnapshotResponse resp;
  uint64_t next = 0;
  bool complete = false;
};
/// The state machine saved a snapshot through meta.index.
struct compacted {
  pb::SnapshotMeta meta;
};

using event = std::variant<started, election_timeout, persisted, chunk_stored, compacted,
                           raft_message>;

// -- effects ----------------------------------------------------------------------------------

/// Write `batch`. Writes happen in the order they are asked for. With `notify` > 0 the shell
/// steps the core with persisted{notify} once the batch is durable.
struct persist {
  persist_batch batch;
  uint64_t notify = 0;
};
/// Send `msg` to member `to`. `after_writes`: only once every write asked for so far (in this
/// step and before) is durable: persist before you promise (§5.1, thesis §3.8).
struct send {
  std::string to;
  raft_message msg;
  bool after_writes = true;
};
/// Hand committed entries to the state machine, in order.
struct apply {
  std::vector<pb::LogEntry> entries;
};
/// The node learns the leader of `term` (its address for clients' redirects).
struct leader_known {
  uint64_t term;
  std::string id;
  std::string address;
};
/// Give a snapshot chunk to storage; it answers with chunk_stored.
struct store_chunk {
  pb::InstallSnapshot req;
  pb::InstallSnapshotResponse resp;
};
/// The state machine restores the snapshot `meta` (after the install written before it).
struct restore {
  pb::SnapshotMeta meta;
};
/// Once every write so far is durable, the node stops: a committed configuration removed it.
struct stop_removed {};
/// The election timer: `fresh` draws a new random timeout (§5.2); otherwise the running timeout
/// starts again from now.
struct arm_election_timer {
  bool fresh = true;
};
/// The role is done: the node starts role `next` with the state. `redispatch`: the event
/// being handled goes to the next role too.
struct become {
  role_kind next;
  bool redispatch = false;
};

using effect = std::variant<persist, send, apply, leader_known, store_chunk, restore,
                            stop_removed, arm_election_timer, become>;
using effects = std::vector<effect>;

// -- what each step sees ----------------------------------------------------------------------

/// What a step reads besides the state: the configuration, the time, where to log.
struct env {
  const node_config& cfg;
  spdlog::logger& log;
  time_point now;
};

/// What the follower role holds besides raft_state.
struct follower_role {
  bool chunk_pending = false; // a snapshot chunk is with storage: others wait for a resend
  /// Until then a leader was heard from recently: pre-votes are refused (thesis §9.6).
  time_point lease_until{};
  bool removal_reported = false;
};

/// What the candidate role holds besides raft_state.
struct candidate_role {
  std::set<std::string> votes;
  bool pre_voting = false;  // asking for pre-votes for term + 1; nothing changed yet
  bool campaigning = false; // true once our own vote is durable and requests went out
  uint64_t vote_write = 0;  // the persist that makes our own vote durable
  bool removal_reported = false;
};

/// The follower's rules (§5.2, §5.3, §7, thesis §3.10, §9.6).
effects step_follower(raft_state& s, follower_role& r, const env& e, const event& ev);

/// The candidate's rules (§5.2, thesis §9.6).
effects step_candidate(raft_state& s, candidate_role& r, const env& e, const event& ev);

/// The term of a Raft message.
uint64_t term_of(const raft_message& m);

/// What the term prelude made of a message.
enum class prelude { handled, stepped_down, current };

/// The term prelude (§5.1), run once for every Raft message before any role's rules: a
/// candidate that a committed configuration removed is told so; a message of an older term is
/// answered with ours (requests) or dropped (responses); a higher term is taken, with no vote
/// (the role writes it). Pre-votes and granted pre-vote answers carry a proposed term and
/// change nothing here; TimeoutNow is the follower's to check. Effects go to `fx`.
prelude run_prelude(raft_state& s, const raft_message& m, effects& fx, const env& e);

/// The answer to an InstallSnapshot of an older term: our term, so that its sender steps down.
pb::InstallSnapshotResponse reject_stale_snapshot(const raft_state& s,
                                                  const pb::InstallSnapshot& req);

} // namespace cafraft::core
