// The rules of Raft that every role shares, as plain functions over raft_state: handler in,
// effects out. Role actors call them and carry out the effects (persist, send, reply) in order.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft::rules {

/// §5.1: a message from a higher term moves this node to that term as a follower with no vote.
/// Returns true when the term changed (the hard state must be persisted).
bool observe_term(raft_state& s, uint64_t term);

/// The hard state to write when term or vote changed since the last call (or the load), and
/// marks it as written. Every role calls it before it sends anything that depends on it.
std::optional<pb::HardState> take_hard_state(raft_state& s);

/// §5.4.1: is a log ending at (last_index, last_term) at least as up to date as ours?
bool log_up_to_date(const raft_state& s, uint64_t last_index, uint64_t last_term);

/// §5.2, §5.4.1: decides a vote for a request of the current term (observe_term first).
/// Records the vote in `s`; the caller persists before it sends the response.
pb::RequestVoteResponse decide_vote(raft_state& s, const pb::RequestVote& req);

/// Thesis §9.6: answers a pre-vote. Changes nothing. Granted when the candidate's log is up to
/// date, this node is not resyncing, it has not heard from a leader within the minimum election
/// timeout (`leader_recent`), and the candidate's proposed term is above ours (or equal, with
/// no vote and no leader in it).
pb::RequestVoteResponse decide_pre_vote(const raft_state& s, const pb::RequestVote& req,
                                        bool leader_recent);

/// What accepting an AppendEntries changed.
struct append_effects {
  pb::AppendEntriesResponse response;
  /// > 0: the log was cut from this index on (entries that conflicted with the leader).
  uint64_t truncated_from = 0;
  /// Entries added to the log (to persist, after the truncation).
  std::vector<pb::LogEntry> appended;
};

/// §5.3: the log consistency check and append, for a request of the current term from its
/// leader. Never truncates an entry that matches the leader's (a stale or duplicated request
/// leaves the log unchanged). Fast backtracking: a reject names where the leader should retry.
append_effects accept_append(raft_state& s, const pb::AppendEntries& req);

/// §5.1: the answer to an AppendEntries of an older term; it tells the stale leader our term
/// so that it steps down.
pb::AppendEntriesResponse reject_stale_append(const raft_state& s, const pb::AppendEntries& req);

/// §7: installs a snapshot from the leader (one that ends past commit_index). Entries after it
/// stay when the log holds the snapshot's last entry (same index and term); otherwise the whole
/// log goes. Commit and applied index move up to the snapshot. Returns true when the log was
/// reset (storage must drop it too).
bool install_snapshot(raft_state& s, const pb::SnapshotMeta& meta);

/// The state machine saved a snapshot through meta.index: the entries it covers leave the log.
/// Ignored when the log no longer holds them (a newer snapshot was installed meanwhile).
void compact(raft_state& s, const pb::SnapshotMeta& meta);

/// Entries (apply_sent, commit_index] to hand to the state machine; advances apply_sent.
std::vector<pb::LogEntry> take_committed(raft_state& s);

// -- membership (thesis §4.1, docs/membership.md) ---------------------------------------------

/// The feature level an ENTRY_CLUSTER_LEVEL entry holds; 0 for other entries or bad data.
uint32_t cluster_level_of(const pb::LogEntry& e);

/// The leader appends an ENTRY_CLUSTER_LEVEL entry for `level` (runtime/features.hpp).
pb::LogEntry& append_cluster_level(raft_state& s, uint32_t level);

/// The configuration an ENTRY_CONFIG entry holds; nullopt for other entries or bad data.
std::optional<configuration> config_of(const pb::LogEntry& e);

/// Sets s.config to the last ENTRY_CONFIG entry in the log, else to base_config. Called after
/// anything that adds or removes entries: a configuration takes effect when it is appended, and
/// a removed one (its entry cut) gives way to the one before it.
void refresh_config(raft_state& s);

/// Appends (as leader) an entry that makes `next` the configuration, in effect at once.
const pb::LogEntry& append_config(raft_state& s, std::vector<member> next);

/// May the leader append a configuration entry now? Only one may be uncommitted at a time,
/// and only once an entry of the leader's own term is committed (`own_term_index`).
bool config_change_allowed(const raft_state& s, uint64_t own_term_index);

/// A committed configuration removed this node, which had been a member: sets s.removed (to be
/// persisted) and returns true.
bool check_removed(raft_state& s);

/// Does this candidate campaign although a committed configuration removed it? True when this
/// node's latest configuration is committed, does not hold the candidate (id and incarnation),
/// and either the candidate's log ends before that configuration (it missed its removal) or the
/// candidate holds its own removal (removed_at) and that entry is committed here. A member
/// added by a configuration this node has not seen yet is never told so: its log goes past
/// this node's configuration. Such a candidate is told it was removed and stops.
bool candidate_removed(const raft_state& s, const pb::RequestVote& req);

/// Fills in what a vote request says about the candidate itself: its incarnation, and its own
/// pending removal (see candidate_removed).
void describe_candidate(const raft_state& s, pb::RequestVote& req);

/// The Raft state of node `id` as storage recovered it: term, vote and log as written; commit and
/// applied index at the snapshot (everything in it was committed and applied); the
/// configuration from the log, else the snapshot's, else `initial_members`.
/// `log` is moved from rec.log.
raft_state recover(const recovered_state& rec, std::vector<pb::LogEntry> log, const std::string& id,
                   const std::vector<member>& initial_members);

} // namespace cafraft::rules
