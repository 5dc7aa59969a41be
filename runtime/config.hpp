// What a node is given when it is spawned. Plain data, no CAF.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <cafraft/runtime/features.hpp>
#include <cafraft/runtime/tls.hpp>

namespace cafraft {

class group_table;
class log_storage;
class state_machine;
class step_observer;
struct raft_state;

struct member {
  std::string id;           // the project's node id, unique in the cluster
  std::string address;      // host:port where it is reached (any label in-process)
  bool learner = false;     // receives the log, does not vote; promoted once caught up
  uint64_t incarnation = 0; // see pb::Member::incarnation
};

/// The incarnation of a member an operator added before its node joined: the first node that
/// joins under that id and address takes it over.
constexpr uint64_t any_incarnation = ~uint64_t{0};

inline bool operator==(const member& a, const member& b) {
  return a.id == b.id && a.address == b.address && a.learner == b.learner &&
         a.incarnation == b.incarnation;
}

struct node_config {
  /// This node's id, unique in the cluster.
  std::string id;
  /// Where this node is reached (host:port; any label in-process). Taken from `members` when
  /// empty; a node that joins must have one.
  std::string address;
  /// The initial voting members, this node included, for a node that starts a new cluster.
  /// Used only when the node's storage holds no configuration yet; after that the
  /// configuration lives in the log (docs/membership.md). Empty: the node joins an existing
  /// cluster (join_cluster()) and waits to be admitted.
  std::vector<member> members;

  /// Election timeouts are drawn uniformly from [min, max] for every election (§5.2).
  std::chrono::milliseconds election_timeout_min{150};
  std::chrono::milliseconds election_timeout_max{300};
  /// How often a leader sends AppendEntries when it has nothing else to send.
  std::chrono::milliseconds heartbeat_interval{50};
  /// Quiescence (0: never): a leader with no client request for this long, whose followers
  /// all hold every entry, committed, sends one last heartbeat marked `quiesce` and then none;
  /// its followers stop their election timers. The group sends nothing until a client request
  /// or a Raft message wakes the leader (its next AppendEntries wakes the followers), a client
  /// turns up at a follower, or a node loses its connection to the leader (which the
  /// connection's keepalive notices once per pair of processes, not per group): that follower
  /// starts its election timer again. Meant for many groups per process, most of them idle.
  /// Should be several heartbeat intervals.
  std::chrono::milliseconds quiesce_after{0};
  /// A quiesced follower that heard nothing for this long asks the leader whether it is there
  /// (a probe; the leader, there and idle, answers with one marked heartbeat): the backstop for
  /// a broken connection it did not hear of. 0: never.
  std::chrono::milliseconds quiesce_backstop{60000};
  /// Seed of the node's random source (election timeouts). 0 draws one from std::random_device.
  uint64_t seed = 0;

  /// Pre-vote (thesis §9.6): a node whose election timer fires first asks whether a majority
  /// would vote for it, without changing any term, and starts an election only if so. A node
  /// that was cut off therefore does not raise its term and depose a healthy leader when it
  /// comes back. Nodes that heard from a leader within election_timeout_min refuse pre-votes.
  bool pre_vote = true;
  /// Check-quorum: a leader that has not heard from a majority of voters for
  /// election_timeout_max steps down, so that clients stop waiting on a leader that cannot
  /// commit.
  bool check_quorum = true;

  /// May this node campaign at all? Nodes that are not electable never start an election
  /// (they still vote and replicate); learners never campaign either.
  bool electable = true;
  /// Asked each time the election timer fires on a voter; false skips this election. The
  /// policy hook of docs/membership.md (e.g. only nodes in one zone lead). Empty: always.
  std::function<bool(const raft_state&)> may_campaign;
  /// The validity check of a leader this node learns of (itself included): false makes the
  /// node ask that leader to step down, once per term, with a warning in its log and a
  /// LEADER_INVALID event to its subscribers (docs/membership.md, "Leadership hooks"). It runs
  /// in the node actor: it must be quick. Empty: every leader is valid.
  std::function<bool(const std::string& leader_id, uint64_t term)> valid_leader;
  /// Called when this node becomes leader of `term`, before it serves its first write or read:
  /// it calls `done` (from any thread, once) when the leader may serve. Clients' writes and
  /// reads wait until then, or until leader_hook_timeout. It runs in the leader actor: start
  /// slow work elsewhere and call `done` from there.
  std::function<void(uint64_t term, std::function<void()> done)> on_become_leader;
  /// Called when the leader of `term` is asked to hand its leadership to `target` (empty: the
  /// best voter), before it does: it calls `done` when the transfer may go on, or
  /// leader_hook_timeout passes. The same rules as on_become_leader.
  std::function<void(uint64_t term, const std::string& target, std::function<void()> done)>
      before_transfer;
  /// How long the leader waits for a hook's `done`: a stuck hook never stalls the cluster.
  std::chrono::milliseconds leader_hook_timeout{1000};
  /// Preference among candidates, 0 (lowest) to 100 (highest, the default): a node of priority
  /// p waits (100 - p)% of (election_timeout_max - election_timeout_min) longer before it
  /// campaigns,
  /// so that a higher-priority node usually wins the election. A preference, not a rule: any
  /// up-to-date voter may still win when the others are slow or cut off.
  int priority = 100;

  /// The highest feature level this node announces (runtime/features.hpp). Only tests and
  /// upgrade rehearsals lower it, to stand for a node of an older binary.
  uint32_t feature_level = features::current;

  /// A learner is promoted to voter once its log is within this many entries of the leader's
  /// commit index.
  uint64_t learner_promote_lag = 64;
  /// Membership changes a node's change_request actor holds (queued behind the one it runs)
  /// before it answers `overloaded`.
  size_t max_pending_changes = 64;
  /// Leadership events held for a subscriber that has not taken them yet; beyond it the
  /// oldest are dropped and counted (pb::LeadershipEvent::dropped).
  size_t max_pending_events = 64;

  /// At most this many entries, and about this many bytes, in one AppendEntries.
  size_t max_batch_entries = 512;
  size_t max_batch_bytes = 1 << 20;
  /// AppendEntries messages in flight per follower while replicating (pipelining). Entries
  /// proposed while the window is full go out together in the next message. Where a follower's
  /// fsync takes longer than a round trip (one machine, a LAN) a small window makes fewer,
  /// larger messages: 2 did 15% more writes than 16 at 100 clients (docs/performance.md).
  /// Raise it where round trips are long.
  size_t max_inflight = 2;
  /// Client requests a leader holds before it answers `overloaded`.
  size_t max_pending_requests = 100000;

  /// A client session opened on this node while it leads expires after this long without a
  /// write (docs/sessions.md). The timeout is written into the session's entry, so every node
  /// expires it alike whatever its own setting.
  std::chrono::milliseconds session_timeout{std::chrono::minutes{10}};
  /// The clock a leader stamps session entries with, in ms since the Unix epoch (empty: the
  /// system clock). Sessions expire by these stamps only, never by a node's own clock; the
  /// simulation gives each node a clock of its own here.
  std::function<uint64_t()> wall_clock_ms;
  /// Lease reads (READ_LEASE, docs/reads.md): the leader answers from its own state while a
  /// majority acknowledged one of its heartbeats within the last election_timeout_min minus
  /// the drift bound, without asking them again. Needs check_quorum and pre_vote (the voters
  /// that acknowledged refuse to pre-vote for anyone else for election_timeout_min); set it on
  /// every node: a node that sets it also refuses pre-votes for election_timeout_min after it
  /// starts, since it may have acknowledged a lease before a restart. Off: READ_LEASE is served
  /// as a linearizable ReadIndex read.
  bool lease_reads = false;
  /// How much faster one node's clock may run than another's, in parts per million: a lease
  /// lasts election_timeout_min * (1 - drift). A bound below the real drift lets a lease read
  /// return stale data (ReadPolicies.SkewBeyondTheBoundIsWhatBreaksALeaseRead shows it).
  uint32_t clock_drift_ppm = 50000;
  /// Tests only: this node's clock runs at this rate of the actor clock (1: the same). The
  /// simulation skews its nodes' clocks with it.
  double clock_rate = 1.0;

  /// Watches (docs/watches.md): the KV store's most recent changes a node keeps for watches
  /// that start from an earlier index (they are also gone after a snapshot is installed or the
  /// node restarts: such a watch gets `compacted`), and the changes a watcher may fall behind
  /// before its watch ends with `watch_overflow`.
  size_t watch_history = 10000;
  size_t watch_buffer = 1024;

  /// The data directory (docs/storage.md): manifest, hard state and WAL, locked while the node
  /// runs. Durable storage is the default: a node needs either this or `storage`.
  std::string data_dir;
  /// Recorded in a new data directory and checked when it is opened again (empty: not checked).
  std::string cluster_id;
  /// Damage in the synced log stops the node at start with an error naming file and offset.
  /// With this set, the damaged log is set aside instead and copied again from the leader; the
  /// node does not vote until it has caught up.
  bool discard_corrupt_log = false;
  /// Size at which a WAL segment is closed and the next one begun.
  uint64_t wal_segment_bytes = 64ull << 20;
  /// The state machine writes a snapshot, and the log before it is dropped, once this many
  /// entries, or this many bytes of entry data, were applied since the last one (0: that
  /// limit is off; both 0: no snapshots, the log grows without end).
  uint64_t snapshot_entries = 10000;
  uint64_t snapshot_bytes = 64ull << 20;
  /// A follower that needs entries the leader has dropped gets the snapshot in chunks of this
  /// size, one in flight at a time.
  size_t snapshot_chunk_bytes = 1 << 20;
  /// A storage object to use instead of `data_dir`, e.g. memory_storage in tests (it survives a
  /// node's restart within one process, not the process).
  std::shared_ptr<log_storage> storage;
  /// Run the storage actor on its own thread (a slow disk never stalls the others). Tests under
  /// CAF's deterministic scheduler set this to false.
  bool detached_storage = true;
  /// Builds the state machine. Empty: the built-in key-value store.
  std::function<std::unique_ptr<state_machine>()> make_state_machine;

  /// Called after every step of every role actor, and for every applied entry (tests).
  std::shared_ptr<step_observer> observer;
  /// The Raft core checks its invariants after every step (core::check, core::check_step) and
  /// aborts with a dump of the state on a violation. Always on in the test harness; costs a
  /// few comparisons a step. cafraft-node: --check-invariants.
  bool check_invariants = false;

  /// Peers connect to the members' addresses themselves, with cafraft's protocol (a node per
  /// process, served with serve_node(); docs/protocol.md). Off: peers are wired with
  /// connect_peer() (in-process clusters, tests).
  bool dial_peers = false;
  /// Many groups in one process (docs/groups.md): the Raft group this node is a replica of, and
  /// the table of the process's groups, shared by its nodes and connections (null: one group
  /// per process). Group 0 is the process's own: it is served (serve_node()) and, with
  /// `dial_peers`, dials; the nodes of other groups share its connections and dial none.
  uint64_t group = 0;
  std::shared_ptr<group_table> groups;
  /// Mutual TLS for the peers' connections and the node's listener (empty: plaintext). With
  /// TLS a node's certificate names its id (CN or a DNS SAN).
  tls_files tls;
  /// A connection attempt to a peer gives up after this; retries back off up to 2 s.
  std::chrono::milliseconds connect_timeout{1000};

  /// Name of the spdlog logger to write to ("cafraft" if empty; created when missing).
  std::string logger_name;

  /// Address of `id` in `members`, or "" when unknown.
  std::string address_of(const std::string& node_id) const;
  /// This node's address: `address`, else its entry in `members`.
  std::string own_address() const;
};

/// Returns an error message when `cfg` cannot run a node, or "" when it can.
std::string validate(const node_config& cfg);

} // namespace cafraft
