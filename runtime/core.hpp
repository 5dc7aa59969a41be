// The Raft core: every decision a role makes, as a pure function of the node's state and one
// event, returning the effects to carry out, in order (rabbitmq's Ra is the model: a pure
// server module and a thin process around it). No CAF, no I/O, no clock of its own: time comes
// in with each step (env::now). The role actors in actors/ turn CAF messages into events,
// call the step of their role and hand the effects to one executor (actors/executor.hpp).
//
// Every role's rules are here: the term prelude that every Raft message passes once before any
// role's rules, the follower, the candidate, and the leader (replication, commit, reads,
// membership changes, leadership transfer). Client requests carry a request id that the shell
// maps to its CAF promise; the core answers with reply effects.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <spdlog/logger.h>

#include <cafraft/messages/errc.hpp>
#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft::core {

/// Visits a variant with one lambda per alternative.
template <class... Fs> struct overloaded : Fs... { using Fs::operator()...; };
template <class... Fs> overloaded(Fs...) -> overloaded<Fs...>;

/// The Raft messages a node sends to another.
/// The Raft messages a node sends to another (ReadIndexRequest and its response: follower
/// reads, thesis §6.4).
using raft_message =
    std::variant<pb::AppendEntries, pb::AppendEntriesResponse, pb::RequestVote,
                 pb::RequestVoteResponse, pb::InstallSnapshot, pb::InstallSnapshotResponse,
                 pb::TimeoutNow, pb::ReadIndexRequest, pb::ReadIndexResponse>;

/// Points in time as the core sees them (the actor clock's, in virtual time under test).
using time_point = std::chrono::steady_clock::time_point;

// -- events -----------------------------------------------------------------------------------

/// The role starts with the state its predecessor handed over.
struct started {};
/// Time passed: the role checks its deadlines (election, heartbeat, check-quorum, transfer)
/// against env::now. The shell steps it when the earliest deadline (core::deadline) is due;
/// an early or repeated tick does nothing.
struct tick {};
/// The election timeout, now, whatever the deadline (tests and scenarios; tick runs it when
/// the deadline passed).
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

/// A client's request, named by the shell: the core never holds a CAF promise.
using request_id = uint64_t;

/// A command to append (a key-value command, or a user's proposal). An ENTRY_SESSION entry
/// (data: a pb::SessionEntry) is answered by what the session table made of it
/// (session_reply).
struct write_request {
  request_id id;
  pb::EntryType type;
  std::string data;
};
/// What a read asks the state machine: a key of the KV store, or a user's own query. The core
/// passes it on as it is; the shell answers with a pb::GetResponse or a pb::QueryResponse.
struct read_query {
  std::string bytes;
  bool kv = true;
};
/// A linearizable read (ReadIndex, thesis §6.4). On the leader it confirms its leadership; on a
/// follower it asks the leader for the read index and answers from its own state once it has
/// applied that far (a follower read); a candidate fails it (unknown_leader).
struct read_request {
  request_id id;
  read_query query;
  /// READ_LEASE: the leader answers at once while its lease holds (node_config::lease_reads),
  /// else as any linearizable read.
  bool lease = false;
};
/// A join (`join` set) or a leave, one server at a time (thesis §4.1).
struct change_request {
  request_id id;
  std::optional<pb::JoinRequest> join;
  pb::LeaveRequest leave;
};
/// Hand the leadership to `target` (any voter when empty; thesis §3.10).
struct transfer_request {
  request_id id;
  std::string target;
};
/// Step down now (an operator's request); answered with the term.
struct step_down_request {
  request_id id;
};
/// The leader's heartbeat, now (tick runs it every heartbeat interval): heartbeats and
/// retransmission.
struct heartbeat_tick {};
/// Check-quorum, now (tick runs it every election_timeout_max).
struct quorum_check {};
/// The leadership transfer ran out of time, now (tick runs it at its deadline).
struct transfer_timeout {};
/// A client turned up at a node that does not lead (it was sent to the leader): a quiesced
/// follower starts its election timer again, in case the leader is gone (quiesce_after).
struct wake {};
/// The connection to member `id` broke (the shell's monitor of it, so failures are noticed
/// once per pair of processes, not per group). A quiesced follower of that leader starts its
/// election timer again; a quiesced leader resumes heartbeats and check-quorum.
struct peer_lost {
  std::string id;
};
/// The flush asked for with flush_soon: what arrived meanwhile goes out in one batch.
struct flush_now {};
/// The state machine applied entries from index `first` on, with one result each; a barrier
/// (apply with no entries) reports that everything before it is applied.
struct applied {
  uint64_t first = 0;
  std::vector<std::string> results;
  bool barrier = false;
};
/// Storage read a snapshot chunk for `peer` (read_chunk).
struct chunk_read {
  std::string peer;
  uint64_t offset = 0;
  pb::SnapshotMeta meta;
  std::string data;
};

using event = std::variant<started, tick, election_timeout, persisted, chunk_stored, compacted,
                           raft_message, write_request, read_request, change_request,
                           transfer_request, step_down_request, heartbeat_tick, quorum_check,
                           transfer_timeout, flush_now, applied, chunk_read, wake, peer_lost>;

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
/// Hand committed entries to the state machine, in order. `report`: step the core with
/// applied{} and the results. `barrier` (no entries): report once all before it is applied.
struct apply {
  std::vector<pb::LogEntry> entries;
  bool report = false;
  bool barrier = false;
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
/// The role is done: the node starts role `next` with the state. `redispatch`: the event
/// being handled goes to the next role too.
struct become {
  role_kind next;
  bool redispatch = false;
};

/// A definite or indefinite failure, as messages/errc.hpp names it.
struct failure {
  errc code;
  std::string detail;
};
/// What a request is answered with: a write's result, the configuration after a change, the
/// new leader after a transfer, the term a leader stepped down in, or a failure.
using reply_value =
    std::variant<pb::WriteResponse, pb::MembershipResponse, pb::LeaderInfo, uint64_t, failure>;
struct reply {
  request_id id;
  reply_value value;
};
/// Answer read `id` from the state machine once it has applied `min_index`.
struct read_state {
  request_id id;
  uint64_t min_index;
  read_query query;
};
/// Read up to `max` bytes of the snapshot at `offset` for `peer`; storage answers chunk_read.
struct read_chunk {
  std::string peer;
  uint64_t offset;
  uint64_t max;
};
/// Step the core with flush_now once the messages that are waiting have been handled.
struct flush_soon {};
using effect = std::variant<persist, send, apply, leader_known, store_chunk, restore, stop_removed,
                            become, reply, read_state, read_chunk, flush_soon>;
using effects = std::vector<effect>;

// -- what each step sees ----------------------------------------------------------------------

/// What a step reads besides the state: the configuration, the time, where to log, and the
/// node's seeded random source (election timeouts).
struct env {
  const node_config& cfg;
  spdlog::logger& log;
  time_point now;
  std::mt19937_64& rng;
};

/// The election timer of a follower or candidate: its timeout as last drawn, and when it runs
/// out (§5.2). A follower that hears from its leader moves the deadline without a new draw.
struct election_timer {
  std::chrono::nanoseconds timeout{0};
  time_point deadline = time_point::max();
};

/// What the follower role holds besides raft_state.
struct follower_role {
  /// Follower reads: one ReadIndexRequest is out at a time, for the reads that arrived before
  /// it was sent; those that arrive meanwhile wait for the next (an index the leader gave
  /// before a read arrived would not do for it). The request's id is a random number: an
  /// answer to an earlier role's request never matches.
  struct remote_read {
    request_id id;
    read_query query;
  };
  struct read_batch {
    uint64_t token = 0;
    uint64_t term = 0;   // the term of the leader asked
    time_point deadline; // fails then (unknown_leader): the request or its answer was lost
    std::vector<remote_read> reads;
  };
  std::optional<read_batch> asked;    // the request out
  std::vector<remote_read> read_wait; // the reads for the next one
  election_timer timer;
  bool chunk_pending = false; // a snapshot chunk is with storage: others wait for a resend
  /// Until then a leader was heard from recently: pre-votes are refused (thesis §9.6).
  time_point lease_until{};
  bool removal_reported = false;
};

/// What the candidate role holds besides raft_state.
struct candidate_role {
  election_timer timer;
  std::set<std::string> votes;
  bool pre_voting = false;  // asking for pre-votes for term + 1; nothing changed yet
  bool campaigning = false; // true once our own vote is durable and requests went out
  uint64_t vote_write = 0;  // the persist that makes our own vote durable
  bool removal_reported = false;
};

/// What the leader role holds besides raft_state.
struct leader_role {
  struct read {
    uint64_t round;      // ReadIndex round that a majority must confirm
    uint64_t read_index; // commit index when the read arrived
    read_query query;
    request_id id;
    // A follower's read (ReadIndexRequest): answered to that node with the read index.
    std::string remote;
    uint64_t remote_id = 0;
  };
  struct change {                        // the one membership change it runs
    std::optional<pb::JoinRequest> join; // else a leave
    pb::LeaveRequest leave;
    request_id id;
    uint64_t index = 0; // its configuration entry once appended; 0 while it waits its turn
  };
  struct transfer {
    std::string target;
    request_id id;
    bool timeout_now_sent = false;
    time_point deadline; // gives up then
  };
  std::unique_ptr<replication> repl;
  uint64_t noop_index = 0; // first entry of this term; reads wait until it is committed
  /// Lease reads: when each ReadIndex round the heartbeats carried began, until a majority
  /// acknowledges it; the latest such beginning (the lease runs from there); and whether this
  /// term may serve leases at all (not once it sent TimeoutNow: the target's votes ignore the
  /// voters' pre-vote refusals).
  std::map<uint64_t, time_point> lease_rounds;
  time_point lease_start{};
  bool lease_off = false;
  uint64_t level_index = 0; // the last ENTRY_CLUSTER_LEVEL entry this leader appended
  uint32_t level_sent = 0;  // and its level
  uint64_t flushed = 0;     // highest index handed to storage
  /// When each follower's last answer of this term came (inspection: last contact).
  std::map<std::string, time_point> last_heard;
  time_point next_heartbeat = time_point::max();
  time_point quiet_since{}; // the last client request or wake-up (quiesce_after)
  time_point quorum_deadline = time_point::max(); // the next check-quorum
  bool flush_scheduled = false;
  bool broadcast_due = false; // the next flush sends to every peer (reads, first heartbeat)
  struct pending_write {
    request_id id;
    bool session = false; // an ENTRY_SESSION: its result is a pb::SessionResult
  };
  std::map<uint64_t, pending_write> pending_writes; // log index -> request
  std::deque<read> pending_reads;
  std::optional<change> pending_change;
  std::optional<transfer> pending_transfer;
  bool leaving = false; // removed itself: steps down once the committed writes are answered
};

/// The follower's rules (§5.2, §5.3, §7, thesis §3.10, §9.6).
effects step_follower(raft_state& s, follower_role& r, const env& e, const event& ev);

/// The candidate's rules (§5.2, thesis §9.6).
effects step_candidate(raft_state& s, candidate_role& r, const env& e, const event& ev);

/// The leader's rules (§5.3, §5.4, §7, thesis §3.10, §4.1, §6.4, §9.6).
effects step_leader(raft_state& s, leader_role& r, const env& e, const event& ev);

/// When the role next needs a tick (time_point::max(): never).
time_point deadline(const follower_role& r);
time_point deadline(const candidate_role& r);
time_point deadline(const leader_role& r);

// -- invariants --------------------------------------------------------------------------------

/// What a step may not undo: check_step() compares the state after a step with it.
struct before_step {
  uint64_t term = 0;
  std::string voted_for;
  uint64_t commit_index = 0;
  uint64_t commit_term = 0; // term of the entry at commit_index (by Log Matching, the whole
                            // committed prefix stays when this entry does)
  static before_step of(const raft_state& s);
};

/// What is wrong with `s` as a node in `role` (empty: nothing): the log is contiguous after the
/// snapshot and its terms do not go down; no entry is of a later term than the node's;
/// snapshot_index <= applied <= commit_index <= last index; a leader leads its own term.
/// `role_rules`: also the rules of `role` (not while it hands over).
std::string violation(const raft_state& s, role_kind role, bool role_rules = true);
/// What a step did that it may not (empty: nothing): the term went down, the vote changed
/// within a term, the commit index went down, or a committed entry changed.
std::string step_violation(const before_step& before, const raft_state& after);
/// Both checks; on a violation, writes it with a dump of the state to stderr and aborts. A step
/// that hands over (a become effect) is checked without the rules of `role`.
void check(const before_step& before, const raft_state& after, role_kind role, bool handing_over);

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

/// The answer to a write of a client session (an ENTRY_SESSION applied at `index` in `term`)
/// from what the session table made of it (`result`: an encoded pb::SessionResult): the saved
/// answer for a duplicate, session_expired or invalid_request when nothing was applied.
reply_value session_reply(uint64_t index, uint64_t term, const std::string& result);

/// The answer to a ReadIndexRequest that this node cannot grant (it does not lead that term).
pb::ReadIndexResponse refuse_read_index(const raft_state& s, const pb::ReadIndexRequest& req);

/// The answer to an InstallSnapshot of an older term: our term, so that its sender steps down.
pb::InstallSnapshotResponse reject_stale_snapshot(const raft_state& s,
                                                  const pb::InstallSnapshot& req);

} // namespace cafraft::core
