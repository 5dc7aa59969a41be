// The Raft state of one node: a value type owned by exactly one role actor at a time, handed
// from role to role. No CAF, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/features.hpp>

namespace cafraft {

enum class role_kind { follower, candidate, leader };

const char* to_string(role_kind r);

/// The members of the cluster from one point of the log on (docs/membership.md).
struct configuration {
  std::vector<member> members; // voters and learners, in the order they were added
  /// Log index of the ENTRY_CONFIG entry that set it; 0 for the initial members, and for the
  /// configuration a snapshot carries (taken to be at the snapshot's index).
  uint64_t index = 0;

  const member* find(const std::string& id) const;
  /// The member `id` if it has this incarnation (a node that left and joined again with a new
  /// disk is another member under the same id).
  const member* find(const std::string& id, uint64_t incarnation) const;
  bool is_member(const std::string& id) const { return find(id) != nullptr; }
  bool is_voter(const std::string& id) const;
  size_t voters() const;
  size_t quorum() const { return voters() / 2 + 1; }

  pb::Configuration to_proto() const;
  static configuration from_members(const google::protobuf::RepeatedPtrField<pb::Member>& ms,
                                    uint64_t index);
};

struct raft_state {
  std::string id;
  /// This node's incarnation (pb::Member::incarnation): 0 for an initial member, else drawn when
  /// it joined; kept in the hard state. Configurations name this node by id and incarnation.
  uint64_t incarnation = 0;

  // Persistent (§5.1 Figure 2): written to storage before anything that depends on it is sent.
  uint64_t term = 0;     // never decreases
  std::string voted_for; // set at most once per term
  // The log after the snapshot: log[i].index() == snapshot_index + i + 1. Entries through
  // snapshot_index are committed, applied, and live on only in the snapshot (§7).
  std::vector<pb::LogEntry> log;
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;

  // What storage holds of term and voted_for (or is asked to hold): rules::take_hard_state()
  // compares against it to know when the hard state must be written.
  uint64_t stored_term = 0;
  std::string stored_vote;
  bool stored_resyncing = false;

  // The log was discarded after damage (durable_options::discard_corrupt_log): no vote, no
  // campaign until the log reaches resync_target, the leader's last index at first contact.
  bool resyncing = false;
  uint64_t resync_target = 0;

  // Volatile.
  uint64_t commit_index = 0; // never decreases; <= last_index()
  uint64_t apply_sent = 0;   // highest index handed to the state machine; <= commit_index
  // Feature levels (runtime/features.hpp): what this node's binary supports (the node sets
  // node_config::feature_level; the base level for a bare state, as in the core's tests), and
  // the level in force, from the last committed ENTRY_CLUSTER_LEVEL entry handed to the state
  // machine (or the snapshot's).
  uint32_t feature_level = features::base;
  uint32_t cluster_level = features::base;
  std::string leader_id; // leader of `term` when known, else empty
  bool quiesced = false; // the group is idle: no heartbeats, no election timer (quiesce_after)
  // The leader handed its leadership to this node (TimeoutNow, thesis §3.10): the next
  // election starts at once, without a pre-vote.
  bool campaign_now = false;
  // The leader stepped down on request: it lets one election timeout pass without campaigning,
  // so that another node takes over.
  bool skip_campaign = false;

  // The latest configuration in the log, in effect from when it was appended (thesis §4.1),
  // committed or not; base_config is the one at snapshot_index (or the initial members).
  configuration config;
  configuration base_config;
  bool was_member = false; // some configuration this node has seen included it
  bool removed = false;    // a committed configuration removed it: it stops
  bool stored_removed = false;
  uint64_t stored_incarnation = 0;

  uint64_t last_index() const { return snapshot_index + log.size(); }
  uint64_t last_term() const { return log.empty() ? snapshot_term : log.back().term(); }
  /// Term of the entry at `index`: 0 for index 0, beyond the end, or compacted into the
  /// snapshot (except the snapshot's last entry, whose term is known).
  uint64_t term_at(uint64_t index) const {
    if (index == snapshot_index)
      return snapshot_term;
    return index < snapshot_index || index > last_index() ? 0 : entry(index).term();
  }
  /// The entry at `index`, snapshot_index < index <= last_index().
  const pb::LogEntry& entry(uint64_t index) const { return log[index - snapshot_index - 1]; }
  /// Removes every entry from `index` on (index > snapshot_index).
  void truncate_from(uint64_t index) { log.resize(index - snapshot_index - 1); }

  size_t quorum() const { return config.quorum(); }
  bool is_voter(const std::string& node_id) const { return config.is_voter(node_id); }
  /// This node in the latest configuration (by id and incarnation), or null.
  const member* self() const { return config.find(id, incarnation); }
  bool self_voter() const { return self() != nullptr && !self()->learner; }
  std::string address_of(const std::string& node_id) const;
};

} // namespace cafraft
